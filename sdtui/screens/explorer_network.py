"""The explorer's pairing and Spacedrop (from the command palette, and offers from paired devices)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work

from sdcore.api import count, human_size
from sdcore.events import DropOffered
from sdcore.sdpath import display
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.explorer_base import ExplorerBase, reports_errors
from sdtui.screens.prompt import PromptScreen

if TYPE_CHECKING:
    from sdcore.api import PairedDevice


class NetworkActions(ExplorerBase):
    """Pair with a code, join one, send files with Spacedrop, answer a device's offer."""

    @work(group="pairing", exclusive=True, exit_on_error=False)
    @reports_errors
    async def pair_show_code(self) -> None:
        """Show a 12-word code and wait for another device to join with it (`sd network pair join` there)."""
        devices = self.api.devices
        address = await devices.address()
        if address is None:
            typed = await self.app.push_screen_wait(
                PromptScreen("Where should the other device reach this one? (HOST:PORT; 0.0.0.0 is every network)",
                             f"0.0.0.0:{await devices.default_port()}", title="Pair: listen")
            )
            if not typed:
                return
            address = await devices.listen(typed)
        code = await devices.pair_code()
        self.app.notify(
            f"Pairing code: {code}\n\nOn the other device: palette “Pair: join”, or\n"
            f"sd network pair join {code} --host {address}",
            title="Pair: waiting (10 minutes at most)", timeout=600, markup=False,
        )
        self.status(f"pairing: waiting for a device to join at {address} with the code shown")
        self._paired(await devices.wait_paired())

    @work(group="pairing", exclusive=True, exit_on_error=False)
    @reports_errors
    async def pair_join(self) -> None:
        """Join another device that shows a pairing code."""
        code = await self.ask_and_do(  # a word left out or mistyped is said now, the words kept to mend
            lambda typed: PromptScreen("The 12 words the other device shows:", typed, title="Pair: join"),
            self.api.devices.check_code,
        )
        if not code:
            return
        joined: list[PairedDevice] = []

        async def join(host: str) -> None:
            self.status(f"pairing with the device at {host}…")
            joined.append(await self.api.devices.pair_join(code, host))

        await self.ask_and_do(
            lambda typed: PromptScreen("Where it listens (HOST:PORT, as it says):", typed, title="Pair: join"), join
        )
        if joined:
            self._paired(joined[0])

    def _paired(self, peer: PairedDevice) -> None:
        self.app.clear_notifications()
        self.status(f"paired with {peer.name}, trust {peer.trust}: it is in the sidebar")
        self.app.notify(f"paired with {peer.name}", timeout=5, markup=False)
        self.fill_sidebar()
        self.probe_devices()

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def spacedrop_send(self) -> None:
        """Send the selected files to a paired device's Spacedrop folder."""
        pane = self.active
        files = [p for e in pane.file_list.selection() if e.kind == "file" and (p := pane.path_of(e)) is not None]
        if not files or any(not self.is_here(f) for f in files):
            self.status("Spacedrop sends files of this device: select one or more files first", error=True)
            return
        await self.api.devices.attach()
        peers = await self.sd.paired_devices()
        if not peers:
            self.status("no paired device to send to: pair one first (palette: “Pair: show a code”)", error=True)
            return
        device = await self.app.push_screen_wait(
            PromptScreen(f"Send {self._describe(files)} to which device? ({', '.join(p.name for p in peers)})",
                         peers[0].name, title="Spacedrop")
        )
        if not device:
            return
        self._selection_done()
        self.status(f"offering {self._describe(files)} to {device}…")
        sent = await self.api.devices.send(device, files)
        self.status(f"sent {count(len(sent), 'file')} to {device}'s Spacedrop folder")

    def offer_drop(self, event: DropOffered) -> None:
        """Spacedrop: a paired device offers files; they land in the Spacedrop folder only if the user says yes."""
        names = ", ".join(display(n) for n in event.names[:5]) + (", …" if len(event.names) > 5 else "")
        question = (
            f"{event.device_name} wants to send you {count(len(event.names), 'file')}, {human_size(event.total_bytes)}:"
            f" {names}"
        )

        def answer(accept: bool | None) -> None:
            self.answer_drop(event, bool(accept))

        self.app.push_screen(ConfirmScreen(question, title="Spacedrop", yes="Accept"), answer)

    @work(group="drops", exit_on_error=False)
    @reports_errors
    async def answer_drop(self, event: DropOffered, accept: bool) -> None:
        await self.api.devices.answer(event.drop_id, accept)
        if accept:
            where = self._label(await self.api.devices.spacedrop_dir())
            self.app.notify(
                f"the files from {event.device_name} land in {where} (⇣ Spacedrop in the sidebar)", markup=False
            )
            self.fill_sidebar()
