"""SdtuiApp and `main()`, the `sdtui` command: a keyboard-first file manager over sdcore."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import Theme

from sdcore import log
from sdcore.core import Core
from sdcore.errors import SdError
from sdcore.fs.base import EntryInfo
from sdcore.jobs.manager import JobRecord
from sdcore.library.library import Library
from sdcore.ops.results import DeleteResult
from sdcore.sdpath import SdPath, display, split_remote
from sdtui.config import Config, ConfigError, config_problems, load_config, load_themes, save_theme
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.jobs import JobsScreen
from sdtui.widgets.file_list import FileList
from sdtui.widgets.listing import human_size, shorten_home
from sdtui.widgets.pane import Pane
from sdtui.widgets.sidebar import Sidebar

if TYPE_CHECKING:
    from sdcore.search import Hit, SavedSearch
    from sdcore.tags import Tag


class _OnFirstUse:
    """A module imported when first used: organize, search and file operations are not needed to draw the
    first screen, and importing them all at start-up costs tens of milliseconds before it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)  # the import lock makes this thread-safe


dedup = _OnFirstUse("sdcore.dedup")
metadata = _OnFirstUse("sdcore.metadata")
ops = _OnFirstUse("sdcore.ops")
search = _OnFirstUse("sdcore.search")
tags = _OnFirstUse("sdcore.tags")


class SdtuiApp(App[None]):
    """The explorer app over one Core (opened here from a data dir, or handed in already open)."""

    TITLE = "sdtui"
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        start: str | None = None,
        *,
        data_dir: str | Path | None = None,
        core: Core | None = None,
        config: Config | None = None,
        other: str | None = None,
        mounts_file: str = "/proc/mounts",
        listen: str | None = None,
        library: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config or Config()
        self._owns_core = core is None
        self._hosting = False
        self.core: Core = core or Core(data_dir)
        log.setup(self.core.data_dir, "sdtui")
        self.start_text = start or "."
        self.other_text = other
        self.library_name = library
        """The library to open (name or id); None: the default one."""
        if library:
            self.core.libraries.find(library)  # a wrong name is said at once, before the screen is drawn
        self._library: Library | None = None
        self.last_trashed: list[SdPath] = []
        """Where the last items sent to the trash lie, each in its own device's trash (u restores them)."""
        self.mounts_file = mounts_file
        """Where the sidebar reads the mounted volumes from."""
        self.listen = listen
        """HOST:PORT where paired devices reach this core (browse, copy, Spacedrop), if it listens."""
        self.keymap: dict[str, str] = dict(self.config.keys)
        """Binding id -> keys, as the config rebinds them."""
        for theme in load_themes():
            self.register_theme(theme)
        self.config_problems = config_problems(self.config, set(self.available_themes), binding_ids())
        """What the config names that does not exist (said at start, not ignored)."""
        self.theme = self.config.theme if self.config.theme in self.available_themes else "sdtui-dark"
        self._saved_theme = self.theme
        if self.keymap:
            self.set_keymap(self.keymap)

    def _remember_theme(self, theme: Theme) -> None:
        """A theme picked in the palette is the one the next start uses (written to the config file)."""
        if theme.name == self._saved_theme:
            return
        self._saved_theme = theme.name
        try:
            saved = save_theme(theme.name, self.config.path)
        except ConfigError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        self.notify(f"theme {theme.name} saved in {saved}", timeout=3, markup=False)

    def attach_network(self) -> None:
        """The core's network, client side (paired devices become browsable); imported late for a fast start."""
        from sdcore import net

        net.attach(self.core)

    def on_mount(self) -> None:
        for problem in self.config_problems:
            self.notify(problem, severity="warning", timeout=12, markup=False)
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        try:
            if any(split_remote(t) for t in (self.start_text, self.other_text or "")):
                self.attach_network()
            start = self.core.resolve(self.start_text)
            other = self.core.resolve(self.other_text) if self.other_text else None
        except SdError as exc:
            self.notify(str(exc), severity="error")
            start, other = self.core.local_path("."), None
        self.push_screen(ExplorerScreen(start, other))
        if self.listen:
            self.run_worker(self._serve(self.listen), group="network", exit_on_error=False)

    def host_commands(self) -> None:
        """From now on `sd` commands on this data dir are carried out by this core (called after the first paint:
        loading the command line takes the interpreter for ~150 ms)."""
        if self._owns_core and not self._hosting:
            self._hosting = True
            self.run_worker(self._host(), group="control", exit_on_error=False)

    async def _host(self) -> None:
        try:
            forward = await asyncio.to_thread(importlib.import_module, "sdtui.cli.forward")
            await forward.host(self.core)
        except SdError as exc:
            self.notify(str(exc), severity="warning")

    async def _serve(self, listen: str) -> None:
        try:
            await asyncio.to_thread(self.attach_network)
            address = await self.core.network.start(listen)
        except (SdError, OSError) as exc:
            self.notify(f"cannot listen on {listen}: {exc}", severity="error")
            return
        self.notify(f"paired devices reach this one at {address}")

    def answer_drop(self, drop_id: str, accept: bool) -> None:
        try:
            self.core.network.answer_drop(drop_id, accept)
        except SdError as exc:
            self.notify(str(exc), severity="warning")

    async def on_unmount(self) -> None:
        if self._owns_core:
            await self.core.close()

    # -- what the screens ask of the core --------------------------------------------------

    def label(self, path: SdPath) -> str:
        """A path for people: `~/docs` here, `laptop:/home/me/docs` on a paired device."""
        core = self.core
        if core.is_local(path):
            return display(shorten_home(path.path))
        peer = core.network.trust.get(path.device_id) if core.network is not None else None
        return f"{peer.name if peer else path.device_id}:{display(path.path)}"

    async def library(self) -> Library:
        """The library chosen with --library, else the core's default one (opened once, in a thread: it reads SQLite)."""
        if self._library is None:
            library = await asyncio.to_thread(self.core.library, self.library_name)
            await self.core.go_live(library)  # resume cut-off jobs, watch the locations (live panes)
            self._library = library
        return self._library

    async def _run_job(self, job_id: str) -> JobRecord:
        """Wait for a quick job (rename, mkdir) and raise its error as ours."""
        library = await self.library()
        record = await library.jobs.wait(job_id)
        if record.state == "failed":
            raise SdError(record.error or f"{record.kind} failed")
        return record

    async def rename(self, source: SdPath, new_name: str) -> None:
        """Rename within the same directory (a rename job, waited for)."""
        library = await self.library()
        await self._run_job(await ops.rename(library, source, new_name))

    async def mkdir(self, path: SdPath) -> None:
        """Make a directory (a mkdir job, waited for)."""
        library = await self.library()
        await self._run_job(await ops.mkdir(library, path))

    async def trash(self, paths: list[SdPath]) -> list[SdPath]:
        """Move to the trash (each device's own); returns where each item lies in it (for restoring)."""
        library = await self.library()
        record = await self._run_job(await ops.delete(library, paths))
        items = record.result.items if isinstance(record.result, DeleteResult) else ()
        trashed = [SdPath(p.device_id, i.trashed_at) for p, i in zip(paths, items, strict=False) if i.trashed_at is not None]
        self.last_trashed = trashed
        return trashed

    async def restore(self, trashed: list[SdPath]) -> list[SdPath]:
        """Put trashed items back where they were (on their own device); returns where they are now."""
        restored = []
        for item in trashed:
            back = await self.core.fs_for(item.device_id).restore(item.path)
            restored.append(SdPath(item.device_id, back))
        return restored

    async def delete(self, paths: list[SdPath]) -> None:
        """Delete permanently (a delete job, waited for)."""
        library = await self.library()
        await self._run_job(await ops.delete(library, paths, permanent=True))

    async def transfer(self, kind: str, sources: list[SdPath], destination: SdPath, on_conflict: str = "fail") -> str:
        """Start a copy or move job of `sources` into directory `destination`; returns the job id."""
        library = await self.library()
        start = ops.copy if kind == "copy" else ops.move
        return await start(library, sources, destination, on_conflict=on_conflict)

    # -- organize and find ------------------------------------------------------------------

    async def _in_library(self, call, *args):  # type: ignore[no-untyped-def]
        library = await self.library()
        return await asyncio.to_thread(call, library, *args)

    async def entry_ids(self, paths: list[SdPath]) -> list[int]:
        """The library's entry ids of these files (they must lie in a location of the library)."""
        local = [None if self.core.is_local(p) else str(p.device_id) for p in paths]
        library = await self.library()
        return await asyncio.to_thread(
            lambda: [search.entry_at(library, p.path, d) for p, d in zip(paths, local, strict=True)]
        )

    async def add_location(self, folder: SdPath) -> str:
        """Make a local folder a location of the library and index it (shallow: names, sizes, times).

        Waits for the index job (the jobs strip shows it); returns the location's name.
        """
        from sdcore.index.indexer import index_location  # the indexer is not needed to start

        library = await self.library()
        location = await asyncio.to_thread(library.locations.add, folder.path, "shallow")
        await self._run_job(await index_location(library, location))
        return location.name

    async def index_now(self, directories: list[SdPath]) -> None:
        """Bring directories of a location into the index now (one level each), e.g. a folder made moments ago."""
        from sdcore.index.indexer import refresh

        library = await self.library()
        await refresh(library, [d.path for d in directories if self.core.is_local(d)])

    async def tag_names(self) -> list[Tag]:
        return await self._in_library(tags.list)  # type: ignore[no-any-return]

    async def tag(self, name: str, entry_ids: list[int]) -> None:
        """Put tag `name` on the entries, creating the tag when it is new."""

        def run(library: Library) -> None:
            if tags.normalize(name) not in {t.name for t in tags.list(library)}:
                tags.create(library, name)
            tags.assign(library, name, entry_ids)

        await self._in_library(run)

    async def note(self, entry_id: int) -> str | None:
        return await self._in_library(metadata.note, entry_id)  # type: ignore[no-any-return]

    async def set_note(self, entry_id: int, text: str | None) -> None:
        await self._in_library(metadata.set_note, entry_id, text)

    async def toggle_favourite(self, entry_ids: list[int]) -> bool:
        """Favourite the entries, or un-favourite them when the first one is; returns the new state."""

        def run(library: Library) -> bool:
            now = not metadata.is_favorite(library, entry_ids[0])
            metadata.set_favorite(library, entry_ids, now)
            return now

        return await self._in_library(run)  # type: ignore[no-any-return]

    async def details(self, path: SdPath, entry: EntryInfo) -> list[tuple[str, str]]:
        """What the core knows of an entry: a file's cas_id; a folder's indexed totals, tags, note and favourite
        when the library indexes it."""
        rows: list[tuple[str, str]] = []
        if entry.kind == "file":
            try:
                rows.append(
                    ("cas_id", (await self.core.fs_for(path.device_id).cas_id(path.path)) or "— (empty)")
                )
            except SdError:
                pass
        return rows + await self._library_details(path)

    async def _library_details(self, path: SdPath) -> list[tuple[str, str]]:

        def run(library: Library) -> list[tuple[str, str]]:
            try:
                entry_id = search.entry_at(
                    library, path.path, None if self.core.is_local(path) else str(path.device_id)
                )
            except SdError:
                return []
            rows = []
            kind, size, files = library.read().execute(
                "SELECT kind, size, files FROM entries WHERE id = ?", (entry_id,)
            ).fetchone()
            if kind == "dir" and files is not None:  # summed by the indexer: what `du` would take a walk for
                rows.append(("holds", f"{files:,} file{'' if files == 1 else 's'}, {human_size(size or 0)} (indexed)"))
            rows.append(("tags", ", ".join(t.tag for t in tags.of(library, entry_id)) or "—"))
            if metadata.is_favorite(library, entry_id):
                rows.append(("favourite", "★"))
            text = metadata.note(library, entry_id)
            if text:
                rows.append(("note", text))
            copies = dedup.copies_of(library, entry_id)
            if copies:
                rows.append(("same content", "\n".join(display(p) for p in copies)))
            return rows

        return await self._in_library(run)  # type: ignore[no-any-return]

    def _found(self, hits: list[Hit]) -> list[tuple[SdPath, EntryInfo]]:
        found = []
        for hit in hits:
            device = uuid.UUID(hit.device_id) if hit.device_id else self.core.device.id
            kind = hit.kind if hit.kind in ("dir", "file", "symlink") else "file"
            found.append(
                (SdPath(device, hit.path), EntryInfo(hit.name, kind, hit.size or 0, hit.mtime or 0.0, 0, 0))
            )
        return found

    async def search(self, text: str) -> list[tuple[SdPath, EntryInfo]]:
        """Library search: every word a substring of a name, path or note."""
        return self._found(await self._in_library(lambda lib: search.find(lib, text, limit=1000)))

    async def incomplete_locations(self) -> list[str]:
        """A line for each location whose first index has not finished: search sees only part of it."""
        return await self._in_library(search.incomplete)  # type: ignore[no-any-return]

    async def run_saved(self, name: str) -> list[tuple[SdPath, EntryInfo]]:
        return self._found(
            await self._in_library(lambda lib: search.run(lib, search.get_saved(lib, name).query))
        )

    async def save_search(self, name: str, text: str) -> None:
        await self._in_library(lambda lib: search.save(lib, name, search.Query(text)))

    async def saved_searches(self) -> list[SavedSearch]:
        return await self._in_library(search.saved)  # type: ignore[no-any-return]

    async def tagged(self, name: str) -> list[tuple[SdPath, EntryInfo]]:
        """The files carrying tag `name` (or a tag below it)."""

        def run(library: Library) -> dict[int, str]:
            ids = sorted({t.entry_id for t in tags.entries(library, name)})
            return search.paths_of(library, ids)

        paths = await self._in_library(run)
        fs = self.core.local_fs
        found = []
        for path in paths.values():
            try:
                found.append((self.core.local_path(path), await fs.stat(path)))
            except SdError:
                continue  # gone since it was tagged
        return found

    async def favourites(self) -> list[SdPath]:
        """The favourite files and folders of the library (on this device), oldest favourite first."""

        def run(library: Library) -> list[str]:
            found = search.paths_of(library, metadata.favorites(library))
            return list(found.values())

        return [self.core.local_path(p) for p in await self._in_library(run)]

    async def device_places(self, device_id: uuid.UUID) -> list[tuple[SdPath, EntryInfo]]:
        """Where to start on a paired device: the folders it lets this device browse (its shares, or `/` for full
        trust) and, when it trusts this device fully, its library's locations."""
        network = self.core.network
        if network is None:
            raise SdError("paired devices are not reachable yet: try again in a moment")
        fs = network.fs_for(device_id)
        roots = await fs.roots()
        paths = list(roots)
        if "/" in roots:
            try:
                paths += [os.fsdecode(loc["path"]) for loc in await network.call(device_id, "locations")]
            except SdError:
                pass  # an older sdtui there: its roots are all there is to show
        places = []
        for path in dict.fromkeys(paths):
            try:
                info = await fs.stat(path)
            except SdError:
                continue  # a location that is not there (an unplugged disk)
            places.append((SdPath(device_id, path), info))
        return places

    def open_jobs(self) -> None:
        self.push_screen(JobsScreen())

    def not_yet(self, what: str) -> None:
        self.notify(f"{what}: not available yet (waiting on the core)", severity="warning")

    # -- keys and commands -----------------------------------------------------------------

    def help_sections(self) -> list[tuple[str, list[Binding]]]:
        """The bindings the help screen and the palette show, in sections."""

        def bindings(cls: Any) -> list[Binding]:
            return [b for b in cls.BINDINGS if isinstance(b, Binding)]

        return [
            ("Moving and opening", bindings(FileList)),
            ("Panes", bindings(Pane) + [b for b in bindings(ExplorerScreen) if b.id in _PANE_IDS]),
            ("Files", [b for b in bindings(ExplorerScreen) if b.id not in _PANE_IDS]),
            ("Places (b)", bindings(Sidebar)),
            ("Jobs screen (w)", bindings(JobsScreen)),
        ]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not isinstance(screen, ExplorerScreen):
            return
        for title, bindings in self.help_sections():
            if title.startswith(("Jobs screen", "Places")):
                continue
            for binding in bindings:
                yield SystemCommand(
                    binding.description or binding.action,
                    f"{binding.id}  ({self.keymap.get(binding.id or '', binding.key)})",
                    _runner(screen, binding.action),
                )
        yield SystemCommand("Pair: show a code", "let another device join this one with a 12-word code",
                            screen.pair_show_code)
        yield SystemCommand("Pair: join with a code", "join a device that shows a pairing code", screen.pair_join)
        yield SystemCommand("Spacedrop: send the selection", "send the selected files to a paired device",
                            screen.spacedrop_send)
        for name in sorted(self.available_themes):
            if name.startswith("sdtui-"):
                yield SystemCommand(
                    f"Theme: {name[6:]}", f"switch to the {name} theme", _theme_setter(self, name)
                )


def binding_ids() -> set[str]:
    """The id of every binding of the explorer and its screens: what `[keys]` in the config can rebind."""
    from sdtui.screens.confirm import ConfirmScreen
    from sdtui.screens.conflict import ConflictScreen
    from sdtui.screens.help import HelpScreen
    from sdtui.screens.prompt import PromptScreen
    from sdtui.screens.tag_picker import TagPickerScreen
    from sdtui.widgets.pane import FilterBox

    classes = (FileList, Pane, FilterBox, Sidebar, ExplorerScreen, JobsScreen, ConfirmScreen, ConflictScreen,
               HelpScreen, PromptScreen, TagPickerScreen)
    return {b.id for cls in classes for b in cls.BINDINGS if isinstance(b, Binding) and b.id}


_PANE_IDS = {
    "switch_pane",
    "single_pane",
    "toggle_inspector",
    "toggle_sidebar",
    "focus_sidebar",
    "help",
    "quit",
}


def _runner(screen: ExplorerScreen, action: str):  # type: ignore[no-untyped-def]
    async def run() -> None:
        pane = screen.active
        target = pane.file_list
        if hasattr(target, f"action_{action.split('(')[0]}"):
            await target.run_action(action)
        elif hasattr(pane, f"action_{action.split('(')[0]}"):
            await pane.run_action(action)
        else:
            await screen.run_action(action)

    return run


def _theme_setter(app: App, name: str):  # type: ignore[no-untyped-def]
    def run() -> None:
        app.theme = name

    return run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from sdtui.command import PanelHelp, version

    parser = argparse.ArgumentParser(
        prog="sdtui",
        description="A keyboard-first terminal file manager with two panes over the sdtui core.",
        epilog="Keys: ? shows them all; ctrl+p opens the command palette; q quits.",
        add_help=False,  # drawn as `sd --help` is (PanelHelp)
    )
    parser.add_argument("path", nargs="?", default=".", help="where to open: a local path or DEVICE:/path")
    parser.add_argument("other", nargs="?", default=None, help="what the second pane shows (default: PATH)")
    parser.add_argument(
        "--data-dir", help="the core's data dir (default: $SD_DATA_DIR or ~/.local/share/sdtui)"
    )
    parser.add_argument("--library", "-L", help="the library to use (name or id; default: the default library)")
    parser.add_argument("--config", type=Path, help="config file (default: ~/.config/sdtui/config.toml)")
    parser.add_argument("--theme", help="theme name (sdtui-dark, sdtui-light, sdtui-high-contrast, ...)")
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="let paired devices reach this one (like `sd serve`; port 0: any free port)"
    )
    parser.add_argument("--version", action="version", version=f"sdtui {version()}", help="print sdtui's version and exit")
    parser.add_argument("--help", "-h", action=PanelHelp)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the `sdtui` command."""
    args = parse_args(argv)
    try:
        config = load_config(args.config)
        if args.theme:
            config.theme = args.theme
        app = SdtuiApp(
            args.path, other=args.other, data_dir=args.data_dir, config=config, listen=args.listen, library=args.library
        )
    except (SdError, ConfigError) as exc:
        print(f"sdtui: {exc}", file=sys.stderr)
        return 2
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
