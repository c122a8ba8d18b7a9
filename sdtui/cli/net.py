"""`sd serve`, `sd network ...`, `sd drop` and `sd share ...`: devices, pairing and Spacedrop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import Any

import typer

from sdcore.api import count
from sdcore.sdpath import display
from sdtui.cli.common import JsonOpt, api_of, here, print_json, print_table, run, run_api

network_app = typer.Typer(help="Pair devices, list them, unpair them.", no_args_is_help=True)
pair_app = typer.Typer(help="Pair this device with another one using a 12-word code.", no_args_is_help=True)
share_app = typer.Typer(help="Folders a device with `shared` trust may use.", no_args_is_help=True)
network_app.add_typer(pair_app, name="pair")

TrustOpt = typer.Option(
    "full",
    "--trust",
    help="What the other device may do here: full (all your files) or shared (only shares).",
)

WordsArg = typer.Argument(..., help="The 12 words the other device shows.")
DropArgs = typer.Argument(..., metavar="FILE... DEVICE", help="Files to send, then the device.")


def register(app: typer.Typer) -> None:
    """Add `serve`, `drop`, `network ...` and `share ...` to the main `sd` app."""
    app.add_typer(network_app, name="network")
    app.add_typer(share_app, name="share")
    app.command("serve")(serve)
    app.command("drop")(drop)


def _say(text: str) -> None:
    print(text, flush=True)


def _network(core: Any, auto_accept_drops: bool = False) -> Any:
    from sdcore.net import attach

    return attach(core, auto_accept_drops=auto_accept_drops)


def on_device(argv: list[str]) -> int | None:
    """`sd --device NAME ARGS...`: run `sd ARGS...` on that paired device's core and return its exit status.

    None when no --device is given. The device runs it with its own data dir; --library goes with the command.
    """
    from sdtui.cli.forward import _globals

    device, rest, i = None, [], 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg in ("--device", "--data-dir", "--library", "-L") and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
        elif arg.startswith(("--device=", "--data-dir=")):
            value, i = arg.split("=", 1)[1], i + 1
            arg = arg.split("=", 1)[0]
        else:
            rest.append(arg)
            i += 1
            continue
        if arg == "--device":
            device = value
        elif arg != "--data-dir":  # the data dir is this device's (its key); the other side uses its own
            rest += [arg, value]
    if device is None:
        return None
    from sdcore.errors import SdError
    from sdcore.net import run_on_device

    try:
        return asyncio.run(run_on_device(_globals(argv)[0], device, rest + argv[i:]))
    except SdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def ssh_programs() -> Any:
    """What an admin's SSH session runs: the explorer or `sd`, each attached to this core through its control socket."""
    from sdcore.net import AdminPrograms

    return AdminPrograms(
        explorer=(sys.executable, "-m", "sdtui.app"),
        command=(sys.executable, "-m", "sdtui.cli"),
        spare=(sys.executable, "-m", "sdtui.spare"),
    )


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def serve(
    listen: str = typer.Option(
        "0.0.0.0:37520", "--listen", help="HOST:PORT to listen on (port 0: any free port)."
    ),
    auto_accept: bool = typer.Option(
        False, "--auto-accept", help="Accept every Spacedrop from paired devices."
    ),
) -> None:
    """Run this device headless with its SSH server on, for paired devices (a "cloud core")."""

    async def body(core: Any) -> None:
        from sdcore.events import DeviceConnected, DeviceLost, DropOffered, PairingProgress
        from sdtui.cli.forward import host
        from sdtui.cli.headless import pair_on_start

        server = await host(core)  # first: refuses to run twice for one data dir; then `sd` commands come here
        await core.go_live()  # every library: interrupted jobs resume, locations are watched and caught up
        net = _network(core, auto_accept_drops=auto_accept)
        net.serve_programs(ssh_programs())
        address = await net.start(listen)
        net.announce_soon()  # a paired device that has not heard where this one listens hears it now
        await api_of(core).devices.keep_in_sync()  # the libraries shared with other devices

        def unasked(drop_id: str) -> None:  # the explorer asked quit or died: no one else here can answer
            from sdcore.errors import NotFound

            with contextlib.suppress(NotFound):  # answered there before it closed
                net.answer_drop(drop_id, False, nobody_to_ask="the explorer it was asked in has closed")

        server.on_unasked = unasked
        _say(f"serving {core.device.name} ({core.device.id}) on {address}")
        pair_on_start(net, _say)

        async def report() -> None:
            with core.bus.subscribe(DeviceConnected, DeviceLost, DropOffered, PairingProgress) as events:
                async for e in events:
                    if isinstance(e, DeviceConnected):
                        _say(f"connected: {display(e.name)} ({e.device_id})")
                    elif isinstance(e, DeviceLost):
                        _say(f"disconnected: {display(e.name)} ({display(e.reason)})")
                    elif isinstance(e, DropOffered):
                        asked = not auto_accept and server.attached > 0  # an attached explorer asks its person
                        verdict = (
                            "accepted" if auto_accept
                            else "asked in the attached explorer" if asked
                            else "not taken: nobody here to ask (--auto-accept takes drops)"
                        )  # fmt: skip
                        names = ", ".join(display(n) for n in e.names)
                        _say(f"drop from {display(e.device_name)}: {names} — {verdict}")
                        if not auto_accept and not asked:
                            net.answer_drop(
                                e.drop_id, False, nobody_to_ask="it runs `sd serve` without --auto-accept"
                            )
                    elif isinstance(e, PairingProgress):
                        _say(f"pairing: {e.stage} {display(e.detail)}")

        reporter = asyncio.create_task(report())
        try:
            await _until_stopped()
        finally:
            reporter.cancel()

    run(body)


@pair_app.command("generate")
def pair_generate(
    trust: str = TrustOpt,
    listen: str = typer.Option(
        "0.0.0.0:37520", "--listen", help="HOST:PORT to wait on for the other device."
    ),
    json: bool = JsonOpt,
) -> None:
    """Print a 12-word code and wait (10 minutes at most) for another device to join with it."""

    def show(code: str, address: str) -> None:
        if json:
            print_json({"code": code, "address": address})
        else:
            _say(f"pairing code: {code}")
            _say(f"on the other device run:\n  sd network pair join {code} --host {address}")
            _say("waiting (the code works once, for 10 minutes)...")

    async def body(api: Any) -> None:
        address = await api.devices.address() or await api.devices.listen(listen)  # `sd serve` takes the join
        show(await api.devices.pair_code(trust), address)
        peer = await api.devices.wait_paired()
        _say(f"paired with {display(peer.name)} ({peer.id}), trust {peer.trust}")

    run_api(body)


@pair_app.command("join")
def pair_join(
    words: list[str] = WordsArg,
    host: str = typer.Option(..., "--host", help="HOST:PORT the other device printed."),
    trust: str = TrustOpt,
) -> None:
    """Join a device that is showing a pairing code."""

    async def body(api: Any) -> None:
        peer = await api.devices.pair_join(words, host, trust=trust)
        _say(f"paired with {display(peer.name)} ({peer.id}) at {host}, trust {peer.trust}")

    run_api(body)


@network_app.command("devices")
def devices(json: bool = JsonOpt) -> None:
    """List the paired devices."""

    async def body(api: Any) -> None:
        await api.devices.attach()  # the paired devices are read by the network
        peers = await api.devices.list()
        if json:
            print_json(
                [
                    {"id": p.id, "name": p.name, "trust": p.trust, "addresses": list(p.addresses),
                     "public_key": p.public_key, "paired_at": p.paired_at}
                    for p in peers
                ]
            )  # fmt: skip
        else:
            rows = [
                (
                    p.name,
                    p.id,
                    p.trust,
                    " ".join(p.addresses),
                    time.strftime("%Y-%m-%d", time.localtime(p.paired_at)),
                )
                for p in peers
            ]
            print_table(("name", "id", "trust", "addresses", "paired"), rows)

    run_api(body)


@network_app.command("unpair")
def unpair(device: str = typer.Argument(..., help="The device's name or id prefix.")) -> None:
    """Forget a paired device: it can no longer connect (open connections are closed)."""

    async def body(api: Any) -> None:
        peer = await api.devices.unpair(device)
        _say(f"unpaired {display(peer.name)} ({peer.id})")

    run_api(body)


def drop(
    args: list[str] = DropArgs,
) -> None:
    """Send files to a paired device (Spacedrop); they land in its Spacedrop folder if it accepts."""
    if len(args) < 2:
        print("error: give at least one file and then the device: sd drop FILE... DEVICE", file=sys.stderr)
        raise typer.Exit(2)
    *files, device = args

    async def body(api: Any) -> None:
        names = await api.devices.send(device, [await api.resolve(here(f)) for f in files])
        _say(f"sent {count(len(names), 'file')} to {display(device)}: {', '.join(display(n) for n in names)}")

    run_api(body)


@share_app.command("add")
def share_add(path: str) -> None:
    """Share a folder with devices paired with `shared` trust."""

    async def body(api: Any) -> None:
        shared = await api.devices.share(here(path))
        _say(f"shared {display(shared.path)}")
        if shared.data_dir is not None:
            _say(f"note: it holds this device's data dir {display(shared.data_dir)}, which stays private: "
                 "paired devices never reach it")
        if shared.holds_home:
            _say("note: devices you share it with may change ~/.ssh/authorized_keys, ~/.bashrc and the like, and so "
                 "run commands as you: to share files only, share the folders in your home that hold them")

    run_api(body)


@share_app.command("remove")
def share_remove(path: str) -> None:
    """Stop sharing a folder."""

    async def body(api: Any) -> None:
        await api.devices.unshare(here(path))
        _say(f"no longer shared: {display(path)}")

    run_api(body)


@share_app.command("list")
def share_list(json: bool = JsonOpt) -> None:
    """List the shared folders."""

    async def body(api: Any) -> None:
        shares = await api.devices.shares()
        if json:
            print_json(shares)
        else:
            for s in shares:
                _say(display(s))

    run_api(body)
