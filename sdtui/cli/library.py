"""`sd library ...` and `sd device ...`: libraries of the data dir and this device's identity."""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from typing import Any

import typer

from sdcore.api import human_size
from sdcore.sdpath import display
from sdtui.cli.common import JsonOpt, chosen, fail, print_json, print_table, run, run_api

library_app = typer.Typer(help="Create, list, rename and delete libraries.", no_args_is_help=True)
device_app = typer.Typer(help="This device's identity.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(library_app, name="library")
    app.add_typer(device_app, name="device")


@library_app.command("create")
def library_create(
    name: str,
    use: bool = typer.Option(
        None, "--use/--no-use", help="Make it the default library, or not (asked on a terminal when neither is given)."
    ),
    default: bool = typer.Option(False, "--default", hidden=True, help="Same as --use."),
) -> None:
    """Create a library (a NAME.sdlibrary folder in the data dir)."""

    async def create(core: Any) -> tuple[str, bool]:
        first = not core.libraries.list()
        library = core.libraries.create(name)
        print(f"created library {library.name!r} ({library.id}) at {library.folder}")
        return str(library.id), first

    library_id, first = run(create)
    switch = True if default or first else use
    if switch is None:
        switch = sys.stdin.isatty() and typer.confirm(f"Use {name!r} from now on (as the default library)?", default=True)
    if switch:
        run(lambda core: _use(core, library_id))
    else:
        print(f"the default library stays as it was; `sd library use {_quoted(name)}` switches to this one")


@library_app.command("use")
def library_use(name: str) -> None:
    """Make a library the default one (of sd and sdtui, for this data dir)."""
    run(lambda core: _use(core, name))


async def _use(core: Any, key: str) -> None:
    info = core.libraries.find(key)
    if info.problem:
        fail(f"library {info.name!r} cannot be used: {info.problem}; `sd library repair {_quoted(info.name)}` mends it")
    core.save_settings(default_library=str(info.id or ""))
    print(f"{info.name!r} is the default library now")


def _quoted(name: str) -> str:
    return shlex.quote(name)


@library_app.command("list")
def library_list(json: bool = JsonOpt) -> None:
    """List the libraries of the data dir (a damaged one says what is wrong)."""

    async def body(core: Any) -> None:
        if not core.libraries.list():
            core.library()  # a first run: the default library is made here too, as by every other command
        default = core.settings().get("default_library")
        infos = core.libraries.list()
        if json:
            print_json(
                [
                    {"id": str(i.id or ""), "name": i.name, "folder": str(i.folder), "default": str(i.id) == default,
                     "damaged": i.problem}
                    for i in infos
                ]
            )  # fmt: skip
            return
        rows = [
            (
                "*" if str(i.id) == default else "",
                i.name,
                str(i.id or ""),
                time.strftime("%Y-%m-%d", time.localtime(i.created)) if i.created else "",
                i.folder,
                "DAMAGED" if i.problem else "ok",
            )
            for i in infos
        ]
        print_table(("", "name", "id", "created", "folder", "state"), rows)
        for i in infos:
            if i.problem:
                print(
                    f"library {i.name!r} is damaged: {i.problem}; `sd library repair {_quoted(i.name)}` rebuilds it "
                    "from what can be read, or restore its folder from a backup",
                    file=sys.stderr,
                )

    run(body)


@library_app.command("check")
def library_check(name: str = typer.Argument(None, help="The library (default: the default library).")) -> None:
    """Read every page of a library's database and say whether it is sound."""

    async def body(core: Any) -> None:
        info = core.libraries.find(_chosen_key(core, name))
        started = time.perf_counter()
        problems = await asyncio.to_thread(core.libraries.check, info.key)
        if problems:
            print(f"library {info.name!r} is damaged:")
            for problem in problems[:10]:
                print(f"  {problem}")
            fail(
                f"library {info.name!r} is damaged; `sd library repair {_quoted(info.name)}` rebuilds it from what "
                "can be read (the index from the disk), or restore its folder from a backup"
            )
        size = (info.folder / "database.db").stat().st_size
        print(f"library {info.name!r} is sound (every page of its {human_size(size)} read in {time.perf_counter() - started:.1f} s)")

    run(body)


@library_app.command("repair")
def library_repair(
    name: str = typer.Argument(None, help="The library (default: the default library)."),
    force: bool = typer.Option(False, "--force", help="Rebuild it even when no damage is found."),
) -> None:
    """Rebuild a damaged library from what can be read: locations, tags, notes, favourites; the index from the disk.

    The damaged database is kept beside the new one (database.db.damaged-DATE).
    """

    async def body(core: Any) -> None:
        info = core.libraries.find(_chosen_key(core, name))
        key = info.key
        if not force and not await asyncio.to_thread(core.libraries.check, key):
            print(f"library {info.name!r} is sound; nothing to repair (--force rebuilds it all the same)")
            return
        done = await core.libraries.repair(key, on_step=lambda step: print(step, file=sys.stderr, flush=True))
        if not done.rebuilt:
            print(f"repaired library {done.name!r}: its database is whole; library.json was written anew, with a new id")
        else:
            _tell_rebuilt(done)
        if done.new_id:
            if core.settings().get("default_library") not in {str(i.id) for i in core.libraries.list()}:
                await _use(core, done.name)  # the default named the old id: this was it
            else:
                print(f"`sd library use {_quoted(done.name)}` makes it the default")

    run(body)


def _tell_rebuilt(done: Any) -> None:
    print(
        f"repaired library {done.name!r}: kept {done.locations} locations and {done.tags} tags; tags, notes and "
        f"favourites are back on {done.put_back} entries"
        + (f", {done.waiting} wait for their content to appear again" if done.waiting else "")
        + (f", {done.lost} could not be placed" if done.lost else "")
    )
    for what in done.unreadable:
        print(f"  could not be read: {what}")
    if done.backup is not None:
        print(f"the damaged database is kept as {done.backup} (delete it once all is well)")
    if done.new_id:
        print("its library.json could not be read and was written anew, with a new id")


def _chosen_key(core: Any, name: str | None) -> str:
    """The library a command names, else --library, else the default one, else the only one."""
    key = name or chosen().library or core.settings().get("default_library")
    if key:
        return str(key)
    infos = core.libraries.list()
    if not infos:
        fail("there is no library yet; `sd library create NAME` makes one")
    return str(infos[0].key)


@library_app.command("rename")
def library_rename(name: str, new_name: str) -> None:
    """Rename a library (its folder follows)."""

    async def body(core: Any) -> None:
        info = core.libraries.rename(name, new_name)
        print(f"renamed to {info.name!r} ({info.folder})")

    run(body)


@library_app.command("delete")
def library_delete(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Delete a library folder (its index, tags and notes; never the indexed files)."""
    if not yes and not typer.confirm(f"Delete library {name!r} with its tags and notes?"):
        raise typer.Exit(1)

    async def body(core: Any) -> None:
        info = core.libraries.delete(name)
        print(f"deleted library {info.name!r}")

    run(body)


@device_app.command("show")
def device_show(json: bool = JsonOpt) -> None:
    """Show this device's id and name."""

    async def body(core: Any) -> None:
        data = {"id": str(core.device.id), "name": core.device.name, "data_dir": str(core.data_dir)}
        if json:
            print_json(data)
        else:
            print_table(("field", "value"), data.items())

    run(body)


@device_app.command("rename")
def device_rename(name: str) -> None:
    """Rename this device (paired devices see the new name)."""

    async def body(api: Any) -> None:
        renamed = await api.devices.rename_this(name)
        print(f"this device is now {display(renamed.name)!r}")
        if renamed.paired:
            print(
                f"told {len(renamed.told)} of {renamed.paired} paired device(s) now"
                + ("" if len(renamed.told) == renamed.paired else "; the others learn it when they next connect")
            )

    run_api(body)
