"""`sd volume ...`: the volumes mounted on this device, known by their identity."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import typer

from sdcore.api import human_size
from sdtui.cli.common import JsonOpt, print_json, print_table, run_api

volume_app = typer.Typer(
    help="The volumes (disks, partitions, network shares) mounted on this device.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(volume_app, name="volume")


@volume_app.command("list")
def volume_list(json: bool = JsonOpt) -> None:
    """List the mounted volumes: name, mount point, filesystem, free and total space, kind, identity."""

    async def listed(api: Any) -> list[Any]:
        return list(await api.volumes())

    volumes = run_api(listed)
    if json:
        print_json([asdict(v) | {"name": v.name} for v in volumes])
        return
    print_table(
        ["name", "mounted at", "fs", "free", "size", "kind", "id"],
        (
            [v.name, v.mount_point, v.fs_type, human_size(v.free), human_size(v.size), _kind(v), v.id]
            for v in volumes
        ),
    )


@volume_app.command("eject")
def volume_eject(
    name: str = typer.Argument(
        ..., help="The volume's mount point, label or device (as `sd volume list` shows)."
    ),
) -> None:
    """Unmount a volume so that it can be unplugged; says why not when files are open on it."""

    async def ejected(api: Any) -> Any:
        return await api.eject(name)

    volume = run_api(ejected)
    print(f"ejected {volume.name} ({volume.mount_point}): it can be unplugged")


def _kind(volume: Any) -> str:
    kind = "removable" if volume.removable else "system" if volume.system else "fixed"
    return kind + (", read-only" if volume.read_only else "")
