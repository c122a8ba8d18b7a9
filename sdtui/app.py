"""SdtuiApp and `main()`, the `sdtui` command: a keyboard-first file manager over sdcore."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import Theme

from sdcore import log
from sdcore.api import Api, DeviceId, Entry, EntryDetails, PairedDevice, Trashed, display, human_size, label
from sdcore.core import Core
from sdcore.errors import SdError
from sdcore.fs.base import EntryInfo
from sdcore.library.library import Library
from sdcore.sdpath import SdPath, split_remote
from sdtui.config import Config, ConfigError, config_problems, load_config, load_themes, save_theme
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.jobs import JobsScreen
from sdtui.widgets.file_list import FileList
from sdtui.widgets.pane import Pane
from sdtui.widgets.sidebar import Sidebar

if TYPE_CHECKING:
    from sdcore.search import SavedSearch
    from sdcore.tags import Tag


class _OnFirstUse:
    """A module imported when first used: organize, search and file operations are not needed to draw the
    first screen, and importing them all at start-up costs tens of milliseconds before it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)  # the import lock makes this thread-safe


metadata = _OnFirstUse("sdcore.metadata")
tags = _OnFirstUse("sdcore.tags")


class SdtuiApp(App[None]):
    """The explorer app over the core API (of a Core opened here from a data dir, or handed in already open)."""

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
        self._hosting = False
        self.start_text = start or "."
        self.other_text = other
        self.library_name = library
        """The library to open (name or id); None: the default one."""
        self._owns_core = core is None
        self.core: Core = core or Core(data_dir)
        """The core this process holds (the screens reach it only through `api`)."""
        self.api: Api = self._make_api()
        """The core API: everything the screens ask of the core goes through it."""
        self.device_names: dict[DeviceId, str] = {}
        """Paired devices' names by id, as last listed (what `label` shows)."""
        self.last_trashed: list[Trashed] = []
        """The items the last trash sent there, and where each lies in its own device's trash (u restores them)."""
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

    def _make_api(self) -> Api:
        """The core API of the core this process holds (a wrong --library is said at once, before drawing)."""
        log.setup(self.core.data_dir, "sdtui")
        if self.library_name:
            self.core.libraries.find(self.library_name)
        return Api(self.core, library=self.library_name, live=True)

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

        network = net.attach(self.core)  # TODO(api): `await self.api.devices.attach()` once the explorer awaits it
        self.device_names = {p.uuid: p.name for p in network.trust.peers()}

    async def on_mount(self) -> None:
        for problem in self.config_problems:
            self.notify(problem, severity="warning", timeout=12, markup=False)
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        try:
            if any(split_remote(t) for t in (self.start_text, self.other_text or "")):
                await self.api.devices.attach()
                await self.paired_devices()
            start = await self.api.resolve(self.start_text)
            other = await self.api.resolve(self.other_text) if self.other_text else None
        except SdError as exc:
            self.notify(str(exc), severity="error")
            start, other = await self.api.resolve("."), None
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
            address = await self.api.devices.listen(listen)
        except SdError as exc:
            self.notify(f"cannot listen on {listen}: {exc}", severity="error")
            return
        self.notify(f"paired devices reach this one at {address}")

    def answer_drop(self, drop_id: str, accept: bool) -> None:
        async def answer() -> None:
            try:
                await self.api.devices.answer(drop_id, accept)
            except SdError as exc:
                self.notify(str(exc), severity="warning")

        self.run_worker(answer(), group="drops", exit_on_error=False)

    async def on_unmount(self) -> None:
        if self._owns_core:
            await self.core.close()

    # -- what the screens ask of the core --------------------------------------------------

    def label(self, path: SdPath) -> str:
        """A path for people: `~/docs` here, `laptop:/home/me/docs` on a paired device."""
        if path.device_id not in self.device_names and self.core.network is not None:  # TODO(api): names from
            self.device_names = {p.uuid: p.name for p in self.core.network.trust.peers()}  # paired_devices()
        return label(path, self.api.device.id, self.device_names)

    async def paired_devices(self) -> list[PairedDevice]:
        """The paired devices (their names are what `label` shows from now on)."""
        devices = await self.api.devices.list()
        self.device_names = {d.id: d.name for d in devices}
        return devices

    async def library(self) -> Library:
        """The library chosen with --library, else the core's default one (opened once, in a thread: it reads SQLite)."""
        return await self.api._open(self.library_name)  # TODO(api): gone once the explorer calls self.api

    async def rename(self, source: SdPath, new_name: str) -> None:
        await self.api.ops.rename(source, new_name)

    async def mkdir(self, path: SdPath) -> None:
        await self.api.ops.mkdir(path)

    async def trash(self, paths: list[SdPath]) -> list[Trashed]:
        self.last_trashed = await self.api.ops.trash(paths)
        return self.last_trashed

    async def restore(self, trashed: list[Trashed]) -> list[SdPath]:
        return await self.api.ops.restore(trashed)

    async def delete(self, paths: list[SdPath]) -> None:
        await self.api.ops.delete(paths)

    async def transfer(self, kind: str, sources: list[SdPath], destination: SdPath, on_conflict: str = "fail") -> str:
        """Start a copy or move job of `sources` into directory `destination`; returns the job id."""
        start = self.api.ops.copy if kind == "copy" else self.api.ops.move
        return await start(sources, destination, on_conflict=on_conflict)

    # -- organize and find ------------------------------------------------------------------

    async def entry_ids(self, paths: list[SdPath]) -> list[int]:
        """The library's entry ids of these files (they must lie in a location of the library)."""
        return [e.entry_id for e in await self.api.library().entries.find(*paths) if e.entry_id is not None]

    async def add_location(self, folder: SdPath) -> str:
        """Make a local folder a location of the library and index it (shallow: names, sizes, times).

        Waits for the index job (the jobs strip shows it); returns the location's name.
        """
        return (await self.api.library().locations.add(folder, "shallow", index=True)).name

    async def index_now(self, directories: list[SdPath]) -> None:
        """Bring directories of a location into the index now (one level each), e.g. a folder made moments ago."""
        from sdcore.index.indexer import refresh

        library = await self.library()
        await refresh(library, [d.path for d in directories if d.device_id == self.api.device.id])

    async def tag_names(self) -> list[Tag]:
        return await self.api.library().tags.list()

    async def _in_library(self, call, *args):  # type: ignore[no-untyped-def]
        library = await self.library()
        return await asyncio.to_thread(call, library, *args)

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
        cas_id: str | None = None
        if entry.kind == "file":
            try:
                cas_id = (await self.api.stat(path, cas_id=True)).cas_id or "— (empty)"
            except SdError:
                pass
        return detail_rows(cas_id, await self.api.library().entries.details(path))

    async def search(self, text: str) -> list[tuple[SdPath, EntryInfo]]:
        """Library search: every word a substring of a name, path or note."""
        return _pairs(await self.api.library().search(text))

    async def incomplete_locations(self) -> list[str]:
        """A line for each location whose first index has not finished: search sees only part of it."""
        return await self.api.library().incomplete()

    async def run_saved(self, name: str) -> list[tuple[SdPath, EntryInfo]]:
        return _pairs(await self.api.library().saved.run(name))

    async def save_search(self, name: str, text: str) -> None:
        await self.api.library().saved.save(name, text)

    async def saved_searches(self) -> list[SavedSearch]:
        return await self.api.library().saved.list()

    async def tagged(self, name: str) -> list[tuple[SdPath, EntryInfo]]:
        """The files carrying tag `name` (or a tag below it)."""
        return _pairs(await self.api.library().tags[name].files())

    async def favourites(self) -> list[SdPath]:
        """The favourite files and folders of the library (on this device), oldest favourite first."""
        return [e.path for e in await self.api.library().favourites.list()]

    async def device_places(self, device_id: DeviceId) -> list[tuple[SdPath, EntryInfo]]:
        """Where to start on a paired device (its shares, or its locations)."""
        return _pairs(await self.api.devices.places(device_id))

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


def _pairs(entries: list[Entry]) -> list[tuple[SdPath, EntryInfo]]:  # TODO(api): panes take Entry
    return [(e.path, e) for e in entries]  # type: ignore[misc]


def detail_rows(cas_id: str | None, details: EntryDetails | None) -> list[tuple[str, str]]:
    """The inspector's rows of what the core knows of an entry beyond its listing."""
    rows = [("cas_id", cas_id)] if cas_id else []
    if details is None:
        return rows
    if details.files is not None:  # summed by the indexer: what `du` would take a walk for
        files = details.files
        rows.append(("holds", f"{files:,} file{'' if files == 1 else 's'}, {human_size(details.size)} (indexed)"))
    rows.append(("tags", ", ".join(details.tags) or "—"))
    if details.favourite:
        rows.append(("favourite", "★"))
    if details.note:
        rows.append(("note", details.note))
    if details.same_content:
        rows.append(("same content", "\n".join(display(p) for p in details.same_content)))
    return rows


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
