"""`sd library ...` and `sd device ...`: libraries of the data dir and this device's identity."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from sdcore.api import count, human_size
from sdcore.sdpath import display
from sdtui.cli.common import JsonOpt, chosen, fail, here, print_json, print_table, run, run_api

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
    if info.unusable:
        fail(f"library folder {info.folder_name!r} cannot be used: {info.unusable}")
    core.save_settings(default_library=str(info.id or ""))
    namesakes = [i for i in core.libraries.list() if i.name == info.name]
    told = f" (folder {info.folder_name!r})" if len(namesakes) > 1 else ""  # which of two 'My Library'
    print(f"{info.name!r}{told} is the default library now")


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
                    {"id": str(i.id or ""), "name": i.name, "folder": str(i.folder), "folder_name": i.folder_name,
                     "linked": i.link is not None, "default": _is_default(i, default), "state": i.state,
                     "damaged": i.problem, "copy_of": i.copy_of, "unusable": i.unusable}
                    for i in infos
                ]
            )  # fmt: skip
            return
        rows = [
            (
                "*" if _is_default(i, default) else "",
                i.name,
                str(i.id or ""),
                time.strftime("%Y-%m-%d", time.localtime(i.created)) if i.created else "",
                i.folder,
                "DAMAGED" if i.problem else f"copy of {i.copy_of}" if i.copy_of is not None else i.state,
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
            elif i.unusable:
                print(f"library folder {i.folder_name!r} cannot be used: {i.unusable}", file=sys.stderr)
        names = Counter(i.name for i in infos if i.copy_of is None)
        for name, n in names.items():
            if n > 1:
                # the folder not named after it (a copy from elsewhere) last: the one to rename
                folders = sorted(
                    (i.folder_name for i in infos if i.name == name and i.copy_of is None), key=lambda f: f != name
                )
                print(
                    f"{n} libraries are named {name!r}: pick one by its folder name ("
                    + ", ".join(f"`--library {_quoted(f)}`" for f in folders)
                    + f") or its id; `sd library rename {_quoted(folders[-1])} NEW` tells them apart for good",
                    file=sys.stderr,
                )

    run(body)


def _is_default(info: Any, default: str | None) -> bool:
    return str(info.id) == default and info.copy_of is None


@library_app.command("open")
def library_open(path: str = typer.Argument(..., help="The library's folder (NAME.sdlibrary), wherever it is.")) -> None:
    """List a library folder kept anywhere (a backup, another disk) in this data dir; it stays where it is."""

    async def body(core: Any) -> None:
        folder = Path(here(path))
        before = core.libraries.find_folder(folder)
        info = core.libraries.add_folder(folder)
        if before is not None:
            print(f"library {info.name!r} is listed already, as {info.folder_name!r}")
        else:
            print(
                f"opened library {info.name!r} ({info.id}) from {info.folder}, listed as {info.folder_name!r}; "
                f"the folder stays where it is (`sd library delete {_quoted(info.folder_name)}` forgets it)"
            )
        if info.unusable:
            fail(f"library folder {info.folder_name!r} cannot be used: {info.unusable}")
        print(f"`sd --library {_quoted(info.folder_name)} ...` uses it, `sd library use {_quoted(info.folder_name)}` "
              "makes it the default")  # fmt: skip
        _tell_other_devices(core, info)

    run(body)


def _tell_other_devices(core: Any, info: Any) -> None:
    """Say so when a library holds locations of another device (copied from there): `sd library migrate` adopts them."""
    library = core.libraries.open(info.key)
    theirs = [loc for loc in library.locations.list() if loc.device_id != core.device.id]
    if theirs:
        devices = {str(loc.device_id)[:8] for loc in theirs}
        print(
            f"it holds {count(len(theirs), 'location')} of another device ({', '.join(sorted(devices))}): browsed and "
            f"searched as that device's catalogue, never scanned here; `sd library migrate {_quoted(info.folder_name)}` "
            "makes those whose folders exist here this device's"
        )


@library_app.command("fork")
def library_fork(
    library: str = typer.Argument(..., help="The library's folder name, or the path of its folder."),
    name: str = typer.Option(None, "--name", help="Its new name (default: kept, or its folder's if another has it)."),
) -> None:
    """Give a copy of a library an id of its own: a library apart, keeping its locations, index, tags and notes."""

    async def body(core: Any) -> None:
        default = core.settings().get("default_library")
        key = here(library) if os.sep in library else library
        was = core.libraries.find_folder(Path(key)) if os.sep in key else core.libraries.find(key)
        info, old_id = core.libraries.fork(key, name)
        print(f"{info.folder} is library {info.name!r} now, with an id of its own ({info.id}); it no longer syncs "
              f"with the library it was copied from")  # fmt: skip
        if was is not None and was.copy_of is None and default == str(old_id):
            core.save_settings(default_library=str(info.id))  # the default stays on the folder it was
        if info.link is None and info.folder.parent != core.libraries.root:
            print(f"`sd library open {_quoted(str(info.folder))}` lists it here")

    run(body)


@library_app.command("migrate")
def library_migrate(name: str = typer.Argument(None, help="The library (default: the default library).")) -> None:
    """Make a library copied from another device this device's: its locations there whose folders exist here
    become this device's (their tags, notes and favourites stay on the same files) and are indexed again."""

    async def body(core: Any) -> None:
        library = core.libraries.open(_chosen_key(core, name))
        done = await core.libraries.migrate(library, on_step=lambda step: print(step, file=sys.stderr, flush=True))
        for loc in done.adopted:
            print(f"adopted {loc.name} ({display(loc.path)})")
        for loc, how in done.not_indexed:
            print(f"  its index ended early ({how}); `sd location rescan {loc.id}` carries on")
        for loc in done.absent:
            print(
                f"not here: {display(loc.path)} (location {loc.id}) stays device {str(loc.device_id)[:8]}'s, offline; "
                f"`sd library migrate` again once the folder is here, or `sd location remove {loc.id}` forgets it"
            )
        for loc, mine in done.taken:
            print(
                f"kept as device {str(loc.device_id)[:8]}'s: {display(loc.path)} (location {loc.id}) overlaps this "
                f"device's location {mine.id} ({display(mine.path)})"
            )
        if not (done.adopted or done.absent or done.taken):
            print(f"library {library.name!r} has no locations of another device to adopt")

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
        if info.link is not None:
            print(f"forgot library {info.name!r}; its folder {info.folder} is left where it is")
        else:
            print(f"deleted library {info.name!r}")

    run(body)


@library_app.command("share")
def library_share(name: str, device: str = typer.Argument(..., help="A device paired with full trust.")) -> None:
    """Share a library with a paired device: the same library on both, its tags, notes and catalogue in sync."""

    async def body(api: Any) -> None:
        lib = api.library(name)
        shared = await lib.sharing.share(device)
        print(f"library {name!r} is shared with {display(shared.name)}; `sd library devices {_quoted(name)}` lists who holds it")

    run_api(body)


@library_app.command("unshare")
def library_unshare(name: str, device: str = typer.Argument(..., help="The device to stop sharing it with.")) -> None:
    """Stop sharing a library with a device (it keeps its copy, which syncs no more)."""

    async def body(api: Any) -> None:
        gone = await api.library(name).sharing.unshare(device)
        print(f"library {name!r} is no longer shared with {display(gone.name)} (it keeps its copy)")

    run_api(body)


@library_app.command("devices")
def library_devices(name: str = typer.Argument(None, help="The library (default: the default library)."),
                    json: bool = JsonOpt) -> None:  # fmt: skip
    """List the devices that hold a library: online or offline, and when each last synced with this one."""

    async def body(api: Any) -> None:
        devices = await api.library(name).sharing.list()
        if json:
            print_json([{"id": d.id, "name": d.name, "this_device": d.this_device, "online": d.online,
                         "last_sync": d.last_sync, "conflicts": d.conflicts, "direct": d.direct}
                        for d in devices])  # fmt: skip
            return
        rows = [
            (d.name, d.id, "this device" if d.this_device else "through the others" if not d.direct
             else "online" if d.online else "offline", "" if d.this_device or not d.direct else _when(d.last_sync))
            for d in devices
        ]  # fmt: skip
        print_table(("device", "id", "state", "last sync"), rows)
        for d in devices:
            if d.this_device and d.conflicts:
                print(f"this device numbered {d.conflicts} changes as ones the others held (restored with its data dir "
                      "from a backup): the others' were kept, and its own made again after them")  # fmt: skip
            elif d.conflicts:
                print(f"{display(d.name)} signed conflicting operations ({d.conflicts} found here: two different "
                      "changes under one number); the earlier of each is kept on every device. Restored with its "
                      "data dir from a backup? Otherwise do not trust it: `sd library unshare`")  # fmt: skip

    run_api(body)


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "never"


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
                f"told {len(renamed.told)} of {count(renamed.paired, 'paired device')} now"
                + ("" if len(renamed.told) == renamed.paired else "; the others learn it when they next connect")
            )

    run_api(body)
