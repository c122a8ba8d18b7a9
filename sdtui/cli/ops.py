"""`sd cp|mv|rm|rename|mkdir` and `sd trash list|restore|empty`: file operations as jobs, with progress."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Collection
from typing import Any

import typer

from sdcore.api import human_size
from sdcore.errors import NotFound, SdError
from sdcore.fs import trash as trash_mod
from sdcore.ops.follow import follow_changes
from sdcore.ops.results import DeleteResult, OpResult, Outcome, PathResult, TransferResult
from sdcore.sdpath import SCHEME, SdPath, display, split_remote
from sdtui.cli.common import (
    JsonOpt,
    api_of,
    fail,
    here,
    library_of,
    print_json,
    print_table,
    run,
    run_api,
)
from sdtui.cli.progress import exit_unless_completed, follow, refuse_background

trash_app = typer.Typer(help="The trash: list what it holds, restore, empty.", no_args_is_help=True)

ConflictOpt = typer.Option(
    "fail",
    "--on-conflict",
    help="When a destination exists: fail (before writing anything), skip, overwrite, rename.",
)
BackgroundOpt = typer.Option(False, "--background", help="Start the job and print its id; do not wait.")


def register(app: typer.Typer) -> None:
    app.command("cp")(cp)
    app.command("mv")(mv)
    app.command("rm")(rm)
    app.command("rename")(rename)
    app.command("mkdir")(mkdir)
    app.add_typer(trash_app, name="trash")


async def _stopped_jobs(api: Any) -> set[str]:
    """The jobs a rerun of the same command would carry on (paused or cut off), asked before it starts."""
    return {j.id for j in await api.library().jobs.list(states=("paused", "interrupted"), limit=1000)}


async def _finish(
    api: Any, job_id: str, json: bool, background: bool, verb: str, stopped: Collection[str] = ()
) -> OpResult | None:
    """Wait for the job (a progress bar, or quiet with --json) and print what it did; the result of a
    completed job shown to a person (for what a command says of its own), else None. `stopped`: the jobs
    that were paused or cut off before this command started (one of them is this job when it carries it on)."""
    if job_id in stopped:  # not its state now: a resumed job may be running already
        print(f"carrying on job {job_id} where it stopped", file=sys.stderr)
    if background:
        print_json({"job": job_id, "state": "running"}) if json else print(f"job {job_id} started")
        return None
    if json:  # scripts get the outcome as JSON on stdout; a job not completed exits non-zero
        record = await follow_quietly(api, job_id)
        result = record.result
        print_json(
            {"job": job_id, "state": record.state, "error": record.error, "result": result.to_dict() if result else {}}
        )
        exit_unless_completed(record)
        return None
    record = await follow(api, job_id)
    exit_unless_completed(record)
    result = record.result
    if isinstance(result, TransferResult):
        copied = result.bytes > 0  # a move within one filesystem renames: no bytes to count or verify
        print(
            f"{verb} {result.files:,} file(s)"
            + (f", {human_size(result.bytes)}" if copied else "")
            + (" (verified)" if copied and result.verified else "")
        )
        for paths, what in (
            (result.skipped, "skipped (exists)"),
            (result.vanished, "vanished before it was copied"),
            (result.unsupported, "not copied (special file)"),
        ):
            for path in paths:
                print(f"warning: {display(path)}: {what}", file=sys.stderr)
    elif isinstance(result, PathResult):
        print(f"{verb} {display(result.path)}")
    return result  # type: ignore[no-any-return]


async def _typed(api: Any, path: SdPath) -> str:
    """A path as a user types it: DEVICE:/path on a paired device, the plain path on this one."""
    if path.device_id == api.device.id:
        return path.path
    names = {d.id: d.name for d in await api.devices.list()}
    return f"{names.get(path.device_id, path.device_id)}:{path.path}"


async def follow_quietly(api: Any, job_id: str) -> Any:
    """`follow` without a bar; a failed job is returned, not raised."""
    try:
        return await follow(api, job_id, quiet=True)
    except SdError:
        return await api.library().jobs.get(job_id)


def cp(
    paths: list[str] = typer.Argument(
        ..., help="SOURCE... DESTINATION (a folder, or a new name for one source)."
    ),
    on_conflict: str = ConflictOpt,
    verify: bool = typer.Option(
        False, "--verify", help="Compare a full BLAKE3 of each copy with its source."
    ),
    json: bool = JsonOpt,
    background: bool = BackgroundOpt,
) -> None:
    """Copy files and folders (recursively; keeps mode, mtime and symlinks)."""
    _transfer(paths, on_conflict, verify, json, background, moving=False)


def mv(
    paths: list[str] = typer.Argument(..., help="SOURCE... DESTINATION."),
    on_conflict: str = ConflictOpt,
    json: bool = JsonOpt,
    background: bool = BackgroundOpt,
) -> None:
    """Move files and folders (a rename on one filesystem; else copy, verify, delete, file by file)."""
    _transfer(paths, on_conflict, True, json, background, moving=True)


def _transfer(
    paths: list[str], on_conflict: str, verify: bool, json: bool, background: bool, moving: bool
) -> None:
    if len(paths) < 2:
        raise typer.BadParameter("give at least one source and a destination")
    refuse_background(background)

    async def body(api: Any) -> None:
        sources = [await api.resolve(here(p)) for p in paths[:-1]]
        destination = await api.resolve(here(paths[-1]))
        if paths[-1].endswith("/"):
            await _folder_meant(api, paths[-1], destination)
        stopped = await _stopped_jobs(api)
        if moving:
            job_id = await api.ops.move(sources, destination, on_conflict=on_conflict)
        else:
            job_id = await api.ops.copy(sources, destination, on_conflict=on_conflict, verify=verify)
        await _finish(api, job_id, json, background, "moved" if moving else "copied", stopped)

    run_api(body)


async def _folder_meant(api: Any, typed: str, destination: SdPath) -> None:
    """A destination typed with a trailing slash names a folder, as for cp: it must be one already."""
    try:
        info = await api.stat(destination)
    except NotFound:
        info = None
    shown = display(typed)
    if info is None:
        raise NotFound(f"no folder {shown}: make it first (`sd mkdir {shown}`), or leave out the / to give a new name")
    if info.kind == "file":
        raise SdError(f"{shown} is a file, not a folder; leave out the trailing / to name the file")


def rm(
    paths: list[str] = typer.Argument(..., help="Files or folders."),
    permanent: bool = typer.Option(
        False, "--permanent", help="Delete for good instead of moving to the trash."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Also remove the locations inside, without asking."),
    json: bool = JsonOpt,
    background: bool = BackgroundOpt,
) -> None:
    """Move files and folders to the trash (restorable), or delete them with --permanent."""
    refuse_background(background)

    async def body(api: Any) -> None:
        targets = [await api.resolve(here(p)) for p in paths]
        inside = await _locations_inside(api, targets, yes)
        stopped = await _stopped_jobs(api)
        job_id = await api.ops.start_delete(targets, permanent=permanent)
        result = await _finish(api, job_id, json, background, "deleted", stopped)
        if result is None and not background:
            return
        for location in inside:
            await api.library().locations.remove(location.id)
            print(f"removed location {location.id} ({location.name}) with its index", file=sys.stderr)
        if not isinstance(result, DeleteResult):
            return
        for target, item in zip(targets, result.items, strict=False):
            label = display(await _typed(api, target))  # on a paired device: in its trash, restored from there
            if item.outcome is Outcome.TRASHED:
                print(f"trashed {label} (`sd trash restore {label}` brings it back)")
            elif item.outcome is Outcome.VANISHED:
                print(f"warning: {label} was already gone", file=sys.stderr)
            elif target.device_id != api.device.id:  # deleted for good over there: no count of entries comes back
                print(f"deleted {label}")
        if result.deleted:
            print(f"deleted {result.deleted:,} entries")

    run_api(body)


async def _locations_inside(api: Any, targets: list[SdPath], yes: bool) -> list[Any]:
    """The locations that deleting `targets` takes away, when they are to be removed too: with --yes, or
    when the user says so; otherwise a warning that names them."""
    here_id = api.device.id
    inside = [
        loc
        for loc in await api.library().locations.list()
        if loc.device_id == here_id
        and any(
            t.device_id == here_id and (loc.path == t.path or loc.path.startswith(t.path.rstrip("/") + "/"))
            for t in targets
        )
    ]
    if not inside or yes:
        return inside
    named = ", ".join(f"{loc.id} ({display(loc.path)})" for loc in inside)
    print(f"warning: this deletes the folder of location {named}; its index, tags and notes stay", file=sys.stderr)
    if sys.stdin.isatty() and typer.confirm("Remove the location too (its index, tags and notes)?", default=False):
        return inside
    print(f"`sd location remove {inside[0].id}` removes it later (`sd rm --yes` does it at once)", file=sys.stderr)
    return []


def rename(path: str, new_name: str, json: bool = JsonOpt) -> None:
    """Give a file or folder a new name in the same folder (refuses to replace anything)."""

    async def body(api: Any) -> None:
        job_id = await api.ops.start_rename(await api.resolve(here(path)), new_name)
        await _finish(api, job_id, json, False, "renamed to")

    run_api(body)


def mkdir(
    paths: list[str] = typer.Argument(..., help="Folders to make."),
    parents: bool = typer.Option(
        False, "--parents", "-p", help="Make missing parents too; no error if it exists."
    ),
    json: bool = JsonOpt,
) -> None:
    """Make folders."""

    async def body(api: Any) -> None:
        for path in paths:
            job_id = await api.ops.start_mkdir(await api.resolve(here(path)), parents=parents)
            await _finish(api, job_id, json, False, "made")

    run_api(body)


def _item_json(item: trash_mod.TrashItem) -> dict:
    return {
        "name": item.name,
        "original_path": item.original_path,
        "trashed_path": item.path,
        "deleted": item.deleted,
        "kind": item.kind,
        "size": item.size,
    }


@trash_app.command("list")
def trash_list(json: bool = JsonOpt) -> None:
    """What the trash holds (the home trash and those of other mounted filesystems), newest first."""
    items = trash_mod.list_trash()
    if json:
        print_json([_item_json(i) for i in items])
        return
    rows = [
        (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(i.deleted)),
            i.kind,
            human_size(i.size),
            i.original_path,
            i.name,
        )
        for i in items
    ]
    print_table(("deleted", "kind", "size", "original path", "name in trash"), rows)


@trash_app.command("restore")
def trash_restore(
    keys: list[str] = typer.Argument(
        ..., help="Original paths (or names in the trash) to put back; DEVICE:/path for a paired device's trash."
    ),
    to: str = typer.Option(None, "--to", help="Restore to this path instead (one item only)."),
    json: bool = JsonOpt,
) -> None:
    """Put trashed files back where they were (never replaces an existing file)."""
    if to and len(keys) > 1:
        raise typer.BadParameter("--to takes one item")

    async def body(core: Any) -> None:
        library = library_of(core)
        items = await asyncio.to_thread(trash_mod.list_trash)
        restored: list[str] = []  # where each went, DEVICE:/path for another device's
        here_now: list[str] = []
        for key in keys:
            if split_remote(key) is not None or key.startswith(SCHEME):  # from that device's own trash
                if to:
                    fail("--to restores only from this device's trash")
                item = core.resolve(key)
                back = await core.fs_for(item.device_id).restore(item.path)
                restored.append(await _typed(api_of(core), SdPath(item.device_id, back)))
                continue
            try:
                found = trash_mod.find(here(key), items)  # the path as typed, where `sd` ran
            except NotFound:
                found = trash_mod.find(key, items)  # or its name in the trash
            here_now.append(await asyncio.to_thread(trash_mod.restore, found, to and here(to)))
            restored.append(here_now[-1])
            items.remove(found)
        await follow_changes(library, [os.path.dirname(p) for p in here_now])
        if json:
            print_json({"restored": restored})
        else:
            for path in restored:
                print(f"restored {display(path)}")

    run(body)


@trash_app.command("empty")
def trash_empty(
    older_than: str = typer.Option(
        None, "--older-than", help="Only what was trashed longer ago than this: 3d, 12h, 2w, a date, or a number of days."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    json: bool = JsonOpt,
) -> None:
    """Delete what the trash holds, for good."""
    seconds = _age(older_than) if older_than is not None else None
    if not yes:
        if not sys.stdin.isatty():
            fail("emptying the trash deletes files for good; add --yes to confirm")
        what = "everything in the trash" if older_than is None else f"what was trashed more than {older_than} ago"
        typer.confirm(f"Delete {what} for good?", abort=True)

    async def body(core: Any) -> None:
        count, freed = await asyncio.to_thread(trash_mod.empty, None, seconds)
        if json:
            print_json({"removed": count, "bytes": freed})
        else:
            print(f"removed {count:,} item(s), {human_size(freed)} freed")

    run(body)


def _age(text: str) -> float:
    """--older-than in seconds: an age as search takes it (3d, 12h, 2w), a date, or a plain number of days."""
    from sdcore.search import parse_when

    try:
        return float(text) * 86400
    except ValueError:
        pass
    try:
        return time.time() - parse_when(text)
    except SdError:
        fail(f"{text!r} is not an age; write it like 3d, 12h, 2w, a date (2024-05-01) or a number of days")
