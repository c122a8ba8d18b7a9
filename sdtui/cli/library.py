"""`sd library ...` and `sd device ...`: libraries of the data dir and this device's identity."""

from __future__ import annotations

import time
from typing import Any

import typer

from sdtui.cli.common import JsonOpt, print_json, print_table, run

library_app = typer.Typer(help="Create, list, rename and delete libraries.", no_args_is_help=True)
device_app = typer.Typer(help="This device's identity.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(library_app, name="library")
    app.add_typer(device_app, name="device")


@library_app.command("create")
def library_create(name: str, default: bool = typer.Option(False, "--default", help="Make it the default library.")) -> None:
    """Create a library (a NAME.sdlibrary folder in the data dir)."""

    async def body(core: Any) -> None:
        library = core.libraries.create(name)
        if default or len(core.libraries.list()) == 1:
            core.save_settings(default_library=str(library.id))
        print(f"created library {library.name!r} ({library.id}) at {library.folder}")

    run(body)


@library_app.command("list")
def library_list(json: bool = JsonOpt) -> None:
    """List the libraries of the data dir."""

    async def body(core: Any) -> None:
        if not core.libraries.list():
            core.library()  # a first run: the default library is made here too, as by every other command
        default = core.settings().get("default_library")
        infos = core.libraries.list()
        if json:
            print_json([{"id": i.id, "name": i.name, "folder": str(i.folder), "default": i.id == default} for i in infos])
        else:
            rows = [("*" if i.id == default else "", i.name, i.id, time.strftime("%Y-%m-%d", time.localtime(i.created)), i.folder) for i in infos]
            print_table(("", "name", "id", "created", "folder"), rows)

    run(body)


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

    async def body(core: Any) -> None:
        core.device.rename(name)
        print(f"this device is now {core.device.name!r}")

    run(body)
