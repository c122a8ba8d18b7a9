"""SdtuiApp and `main()`, the `sdtui` command: a keyboard-first file manager over sdcore."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import Theme

from sdcore import log
from sdcore.api import Api, DeviceId, PairedDevice, label
from sdcore.api.client import RemoteApi, attach
from sdcore.core import Core
from sdcore.errors import CoreRunning, SdError
from sdcore.sdpath import SdPath, split_remote
from sdtui.config import Config, ConfigError, config_problems, load_config, load_themes, save_theme
from sdtui.graphics import HALF_BLOCKS, Graphics, graphics_from_env
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.jobs import JobsScreen
from sdtui.widgets.file_list import FileList
from sdtui.widgets.pane import Pane
from sdtui.widgets.sidebar import Sidebar

CLAIM_TRIES = 100
"""Looks, 50 ms apart, for the socket of a front end that claimed a lost core first (then this one uses it)."""


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
        mounts_file: str | None = None,
        listen: str | None = None,
        library: str | None = None,
        graphics: Graphics = HALF_BLOCKS,
    ) -> None:
        super().__init__()
        self.config = config or Config()
        self.graphics = graphics
        """How the inspector draws pictures (settled before the app starts: see sdtui.graphics)."""
        self._hosting = False
        self._closing = False
        self.start_text = start or "."
        self.restore_tabs = start is None
        """No folder was asked for: the explorer opens on its saved tabs."""
        self.other_text = other
        self.library_name = library
        """The library to open (name or id); None: the default one."""
        self._owns_core = core is None
        self.core: Core = core or Core(data_dir)
        """The core this process holds (the screens reach it only through `api`)."""
        if mounts_file is not None:  # a test's mount table
            self.core.mount_table = mounts_file
        self.api: Api = self._make_api()
        """The core API: everything the screens ask of the core goes through it."""
        self.data_dir = self.core.data_dir
        """Where the explorer keeps its own state (tabs, jump list) beside the core's."""
        self.device_names: dict[DeviceId, str] = {}
        """Paired devices' names by id, as last listed (what `label` shows)."""
        self.device_apis: dict[DeviceId, RemoteApi] = {}
        """The core APIs of paired devices whose library is open here (they trust this one fully), by device."""
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

    async def on_mount(self) -> None:
        for problem in self.config_problems:
            self.notify(problem, severity="warning", timeout=12, markup=False)
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        await self._attach_to_a_running_core()
        try:
            if any(split_remote(t) for t in (self.start_text, self.other_text or "")):
                await self.api.devices.attach()
                await self.paired_devices()
            start = await self.api.resolve(self.start_text)
            other = await self.api.resolve(self.other_text) if self.other_text else None
        except SdError as exc:
            self.notify(str(exc), severity="error", markup=False)
            start, other = await self.api.resolve("."), None
        self.push_screen(ExplorerScreen(start, other, restore=self.restore_tabs))
        if self.listen:
            self.run_worker(self._serve(self.listen), group="network", exit_on_error=False)

    async def _attach_to_a_running_core(self) -> None:
        """Where another process runs this data dir's core (`sd serve`, another sdtui, a foreground `sd`), use it:
        `self.api` is then its API over the control socket. When that process exits, this one takes the core over."""
        if not self._owns_core:
            return
        try:
            remote = await attach(self.core.data_dir, self.library_name)
        except SdError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        if remote is not None:
            self.api = remote  # type: ignore[assignment]  # the same surface, over the socket
            self._owns_core = False
            self.run_worker(self._take_over_when_lost(remote), group="attach", exit_on_error=False)

    async def _take_over_when_lost(self, remote: RemoteApi) -> None:
        lost = await remote.wait_lost()
        if self._closing:
            return
        self.api = self._make_api()
        self._owns_core = True
        claimed = await self._claim_core()
        if claimed is None:  # its libraries stay locked by that process: waiting on them would hang, so stop
            said = (
                f"{lost}; another process holds the core of {self.core.data_dir} but does not answer: sdtui stops"
                " (run it again once that process answers or has ended)"
            )
            self.notify(said, severity="error", timeout=10, markup=False)
            self.exit(return_code=1, message=said)
            return
        if claimed:
            self.notify(f"{lost}: this sdtui runs the core now (its jobs resume here)", severity="warning", timeout=10, markup=False)
        else:
            self.notify(f"{lost}: now using the core another process took over", severity="warning", timeout=10, markup=False)
        await self._fresh_explorer()

    async def _fresh_explorer(self) -> None:
        """The explorer again where it was, on the core `self.api` reaches now."""
        explorers = [s for s in self.screen_stack if isinstance(s, ExplorerScreen)]
        if explorers:  # fresh panes, listening to the core that runs now
            panes = [explorers[0].query_one(f"#{side}", Pane).path for side in ("left", "right")]
            while len(self.screen_stack) > 2:
                self.pop_screen()
            start = panes[0] or await self.api.resolve(".")
            await self.switch_screen(ExplorerScreen(start, panes[1]))

    async def _claim_core(self) -> bool | None:
        """Serve the core from now on, unless another front end claimed it first: then use that one (False);
        None when the process that claimed it does not answer.

        Every explorer attached to a core that stopped gets here at once; the control socket's lock picks one.
        """
        for _ in range(CLAIM_TRIES):
            try:
                await self._serve_commands()
                return True
            except CoreRunning:
                await self._attach_to_a_running_core()
                if not self._owns_core:
                    return False
                await asyncio.sleep(0.05)  # the one that claimed it is still opening its socket
            except SdError as exc:
                self.notify(str(exc), severity="warning", markup=False)
                return True
        return None

    def host_commands(self) -> None:
        """From now on `sd` commands on this data dir are carried out by this core (called after the first paint:
        loading the command line takes the interpreter for ~150 ms)."""
        if self._owns_core and not self._hosting:
            self._hosting = True
            self.run_worker(self._host(), group="control", exit_on_error=False)

    async def _host(self) -> None:
        try:
            await self._serve_commands()
        except CoreRunning:  # another front end started at the same moment and serves the core: use that one
            await self._use_the_core_served_elsewhere()
        except SdError as exc:
            self.notify(str(exc), severity="warning", markup=False)

    async def _use_the_core_served_elsewhere(self) -> None:
        """Attach to the core another process began to serve after this one looked (two cores would fight over
        the libraries' locks), and let go of this one's; it is taken over again if that process exits."""
        for _ in range(CLAIM_TRIES):
            await self._attach_to_a_running_core()
            if not self._owns_core:
                await self.core.close()
                mount_table = self.core.mount_table
                self.core = Core(self.core.data_dir)
                self.core.mount_table = mount_table
                await self._fresh_explorer()
                return
            await asyncio.sleep(0.05)  # it is still opening its socket
        self.notify(f"another process holds the core of {self.core.data_dir} but does not answer", severity="error", markup=False)

    async def _serve_commands(self) -> None:
        """Serve this core's API and `sd` commands on the data dir's control socket (CoreRunning: another does)."""
        forward = await asyncio.to_thread(importlib.import_module, "sdtui.cli.forward")
        await forward.host(self.core, self.api)
        self._hosting = True
        self.run_worker(self.api.devices.keep_in_sync(when_shared=True), group="sync", exit_on_error=False)

    async def _serve(self, listen: str) -> None:
        try:
            address = await self.api.devices.listen(listen)
        except SdError as exc:
            self.notify(f"cannot listen on {listen}: {exc}", severity="error", markup=False)
            return
        self.notify(f"paired devices reach this one at {address}")

    async def on_unmount(self) -> None:
        self._closing = True
        for remote in list(self.device_apis.values()):
            await remote.close()
        if isinstance(self.api, RemoteApi):
            await self.api.close()
        if self._owns_core:
            await self.core.close()

    # -- what the screens ask of the core --------------------------------------------------

    def label(self, path: SdPath) -> str:
        """A path for people: `~/docs` here, `laptop:/home/me/docs` on a paired device."""
        return label(path, self.api.device.id, self.device_names)

    async def paired_devices(self) -> list[PairedDevice]:
        """The paired devices (their names are what `label` shows from now on)."""
        devices = await self.api.devices.list()
        self.device_names = {d.id: d.name for d in devices}
        return devices

    async def device_api(self, device_id: DeviceId) -> RemoteApi:
        """A paired device's core API, opened once over its link (NotTrusted when it does not trust this device
        fully); when it is lost the explorer is told (`ExplorerScreen.device_api_lost`), and the next call opens it again."""
        remote = self.device_apis.get(device_id)
        if remote is None or remote.lost is not None:
            network = await asyncio.to_thread(self.core.net)  # the network of this process: attached or not
            remote = self.device_apis[device_id] = await network.api_of(device_id)
            self.run_worker(self._tell_when_lost(device_id, remote), group="device-apis", exit_on_error=False)
        return remote

    async def _tell_when_lost(self, device_id: DeviceId, remote: RemoteApi) -> None:
        lost = await remote.wait_lost()
        if self.device_apis.get(device_id) is remote:
            del self.device_apis[device_id]
        if not self._closing:
            self.notify(f"{lost}: its library is no longer shown here", severity="warning", timeout=8, markup=False)
            for screen in self.screen_stack:
                if isinstance(screen, ExplorerScreen):
                    screen.device_api_lost(device_id, lost)

    def api_for(self, *paths: SdPath) -> Api:
        """The core API that runs what is done with `paths`: the core of their device when they all lie on one
        paired device whose library is open here, else this one's."""
        devices = {p.device_id for p in paths}
        remote = self.device_apis.get(devices.pop()) if len(devices) == 1 else None
        if remote is None or remote.lost is not None:
            return self.api
        return remote  # type: ignore[return-value]  # the same surface, over SSH

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
    from sdtui.screens.disk_usage import DiskUsageScreen
    from sdtui.screens.help import HelpScreen
    from sdtui.screens.prompt import PromptScreen
    from sdtui.screens.tag_picker import TagPickerScreen
    from sdtui.widgets.pane import FilterBox

    classes = (FileList, Pane, FilterBox, Sidebar, ExplorerScreen, JobsScreen, ConfirmScreen, ConflictScreen,
               HelpScreen, PromptScreen, TagPickerScreen, DiskUsageScreen)
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
    parser.add_argument("path", nargs="?", default=None, help="where to open: a local path or DEVICE:/path (default: the tabs of the last run)")
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
        graphics = graphics_from_env()  # asks the terminal, if at all, before Textual reads its input
        app = SdtuiApp(
            args.path, other=args.other, data_dir=args.data_dir, config=config, listen=args.listen, library=args.library,
            graphics=graphics,
        )
    except (SdError, ConfigError) as exc:
        print(f"sdtui: {exc}", file=sys.stderr)
        return 2
    # What importing made (textual, the core: ~40,000 objects) lives as long as the explorer; frozen, each full
    # collection while it runs skips it (~0.1 s less CPU by the first screen's settling, measured with run_test).
    gc.freeze()
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
