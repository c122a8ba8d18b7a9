"""The explorer's pairing and Spacedrop (from the command palette, and offers from paired devices)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual import work

from sdcore.events import DropOffered
from sdcore.sdpath import display
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.explorer_base import ExplorerBase, reports_errors
from sdtui.screens.prompt import PromptScreen
from sdtui.widgets.listing import human_size

if TYPE_CHECKING:
    from sdcore.net import Network, Peer


class NetworkActions(ExplorerBase):
    """Pair with a code, join one, send files with Spacedrop, answer a device's offer."""

    async def _network(self) -> Network:
        """The core's network, attached now if it was not yet."""
        if self.sd.core.network is None:
            await asyncio.to_thread(self.sd.attach_network)
        assert self.sd.core.network is not None
        return self.sd.core.network

    @work(group="pairing", exclusive=True, exit_on_error=False)
    @reports_errors
    async def pair_show_code(self) -> None:
        """Show a 12-word code and wait for another device to join with it (`sd network pair join` there)."""
        from sdcore.net import DEFAULT_PORT

        network = await self._network()
        if network.address is None:
            typed = await self.app.push_screen_wait(
                PromptScreen("Where should the other device reach this one? (HOST:PORT; 0.0.0.0 is every network)",
                             f"0.0.0.0:{DEFAULT_PORT}", title="Pair: listen")
            )
            if not typed:
                return
            await network.start(typed)
        code = network.pair_generate()
        self.app.notify(
            f"Pairing code: {code}\n\nOn the other device: palette “Pair: join”, or\n"
            f"sd network pair join {code} --host {network.address}",
            title="Pair: waiting (10 minutes at most)", timeout=600, markup=False,
        )
        self.status(f"pairing: waiting for a device to join at {network.address} with the code shown")
        peer = await network.wait_paired()
        self._paired(peer)

    @work(group="pairing", exclusive=True, exit_on_error=False)
    @reports_errors
    async def pair_join(self) -> None:
        """Join another device that shows a pairing code."""
        code = await self.app.push_screen_wait(
            PromptScreen("The 12 words the other device shows:", title="Pair: join")
        )
        if not code:
            return
        host = await self.app.push_screen_wait(
            PromptScreen("Where it listens (HOST:PORT, as it says):", title="Pair: join")
        )
        if not host:
            return
        network = await self._network()
        self.status(f"pairing with the device at {host}…")
        peer = await network.pair_join(code, host)
        self._paired(peer)

    def _paired(self, peer: Peer) -> None:
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
        if not files or any(not self.sd.core.is_local(f) for f in files):
            self.status("Spacedrop sends files of this device: select one or more files first", error=True)
            return
        network = await self._network()
        peers = network.trust.peers()
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
        sent = await network.drop(device, [f.path for f in files])
        self.status(f"sent {len(sent)} file(s) to {device}'s Spacedrop folder")

    def offer_drop(self, event: DropOffered) -> None:
        """Spacedrop: a paired device offers files; they land in the Spacedrop folder only if the user says yes."""
        names = ", ".join(display(n) for n in event.names[:5]) + (", …" if len(event.names) > 5 else "")
        question = (
            f"{event.device_name} wants to send you {len(event.names)} file(s), {human_size(event.total_bytes)}:"
            f" {names}"
        )
        def answer(accept: bool | None) -> None:
            self.sd.answer_drop(event.drop_id, bool(accept))
            network = self.sd.core.network
            if accept and network is not None:
                where = self._label(self.sd.core.local_path(str(network.spacedrop_dir)))
                self.app.notify(
                    f"the files from {event.device_name} land in {where} (⇣ Spacedrop in the sidebar)", markup=False
                )
                self.fill_sidebar()

        self.app.push_screen(ConfirmScreen(question, title="Spacedrop", yes="Accept"), answer)
