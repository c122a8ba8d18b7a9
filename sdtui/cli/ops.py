"""`sd cp|mv|rm|rename|mkdir` and `sd trash list|restore|empty`: file operations as jobs, with progress."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import typer

from sdcore.api import Trashed, count, human_size, parse_age
from sdcore.errors import CannotUndo, NotFound, SdError
from sdcore.sdpath import SCHEME, SdPath, display, split_remote
from sdtui.cli.common import (
    JsonOpt,
    fail,
    here,
    print_json,
    print_table,
    run_api,
    shell_word,
)
from sdtui.cli.progress import exit_unless_completed, follow, refuse_background

if TYPE_CHECKING:  # sdcore.ops is imported when a command uses it: `sd --help` lists them without it
    from sdcore.jobs.results import OpResult

trash_app = typer.Typer(help="The trash: list what it holds, restore, empty.", no_args_is_help=True)

ConflictOpt = typer.Option(
    "fail",
    "--on-conflict",
    help="When a destination exists: fail (before writing anything), skip, overwrite, rename.",
)
UnfitNamesOpt = typer.Option(
    "fail",
    "--unfit-names",
    help="Names the destination cannot hold (FAT, exFAT: a:b, trailing dots, case clashes): fail (before writing "
    "anything), rename (a:b becomes a_b), skip.",
)
BackgroundOpt = typer.Option(False, "--background", help="Start the job and print its id; do not wait.")


def register(app: typer.Typer) -> None:
    app.command("cp")(cp)
    app.command("mv")(mv)
    app.command("rm")(rm)
    app.command("rename")(rename)
    app.command("mkdir")(mkdir)
    app.add_typer(trash_app, name="trash")
    app.command("undo")(undo)


async def _stopped_jobs(api: Any) -> set[str]:
    """The jobs a rerun of the same command would carry on (paused or cut off), asked before it starts."""
    return {j.id for j in await api.library().jobs.list(states=("paused", "interrupted"), limit=1000)}


async def _finish(
    api: Any, job_id: str, json: bool, background: bool, verb: str, stopped: Collection[str] = ()
) -> OpResult | None:
    """Wait for the job (a progress bar, or quiet with --json) and print what it did; the result of a
    completed job shown to a person (for what a command says of its own), else None. `stopped`: the jobs
    that were paused or cut off before this command started (one of them is this job when it carries it on)."""
    from sdcore.jobs.results import PathResult, TransferResult

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
        if isinstance(result, TransferResult) and result.unreadable:
            raise typer.Exit(1)  # listed in "unreadable": not everything was copied
        return None
    record = await follow(api, job_id)
    exit_unless_completed(record)
    result = record.result
    if isinstance(result, TransferResult):
        copied = result.bytes > 0  # a move within one filesystem renames: no bytes to count or verify
        print(
            f"{verb} {count(result.files, 'file')}"
            + (f", {human_size(result.bytes)}" if copied else "")
            + (" (verified)" if copied and result.verified else "")
        )
        for paths, what in (
            (result.skipped, "skipped (exists)"),
            (result.vanished, "vanished before it was copied"),
            (result.unsupported, "not copied (special file)"),
            (result.unreadable, "permission denied, not " + verb),
        ):
            for path in paths:
                print(f"warning: {display(path)}: {what}", file=sys.stderr)
        if result.unreadable:
            again = "move" if result.moved else "copy"
            fail(f"{count(len(result.unreadable), 'item')} above could not be read; make them readable, then {again} them again")
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
    unfit_names: str = UnfitNamesOpt,
    json: bool = JsonOpt,
    background: bool = BackgroundOpt,
) -> None:
    """Copy files and folders (recursively; keeps mode, mtime and symlinks)."""
    _transfer(paths, on_conflict, verify, json, background, moving=False, unfit_names=unfit_names)


def mv(
    paths: list[str] = typer.Argument(..., help="SOURCE... DESTINATION."),
    on_conflict: str = ConflictOpt,
    unfit_names: str = UnfitNamesOpt,
    json: bool = JsonOpt,
    background: bool = BackgroundOpt,
) -> None:
    """Move files and folders (a rename on one filesystem; else copy, verify, delete, file by file)."""
    _transfer(paths, on_conflict, True, json, background, moving=True, unfit_names=unfit_names)


def _transfer(
    paths: list[str],
    on_conflict: str,
    verify: bool,
    json: bool,
    background: bool,
    moving: bool,
    unfit_names: str = "fail",
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
            job = await api.ops.move(sources, destination, on_conflict=on_conflict, unfit_names=unfit_names)
        else:
            job = await api.ops.copy(
                sources, destination, on_conflict=on_conflict, verify=verify, unfit_names=unfit_names
            )
        await _finish(api, job.id, json, background, "moved" if moving else "copied", stopped)

    run_api(body)


async def _folder_meant(api: Any, typed: str, destination: SdPath) -> None:
    """A destination typed with a trailing slash names a folder, as for cp: it must be one already."""
    try:
        info = await api.stat(destination)
    except NotFound:
        info = None
    shown = display(typed)
    if info is None:
        raise NotFound(f"no folder {shown}: make it first (`sd mkdir {shell_word(typed)}`), or leave out the / to give a new name")
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
        job = await api.ops.start_delete(targets, permanent=permanent)
        result = await _finish(api, job.id, json, background, "deleted", stopped)
        if result is None and not background:
            return
        for location in inside:
            await api.library().locations.remove(location.id)
            print(f"removed location {location.id} ({location.name}) with its index", file=sys.stderr)
        from sdcore.jobs.results import DeleteResult, Outcome

        if not isinstance(result, DeleteResult):
            return
        for target, item in zip(targets, result.items, strict=False):
            label = display(await _typed(api, target))  # on a paired device: in its trash, restored from there
            if item.outcome is Outcome.TRASHED:
                print(f"trashed {label} (`sd trash restore {shell_word(await _typed(api, target))}` brings it back)")
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
        job = await api.ops.start_rename(await api.resolve(here(path)), new_name)
        await _finish(api, job.id, json, False, "renamed to")

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
            job = await api.ops.start_mkdir(await api.resolve(here(path)), parents=parents)
            await _finish(api, job.id, json, False, "made")

    run_api(body)


def _item_json(item: Trashed) -> dict:
    return {
        "name": os.path.basename(item.in_trash.path),
        "original_path": item.path.path,
        "trashed_path": item.in_trash.path,
        "deleted": item.deleted,
        "kind": item.kind,
        "size": item.size,
    }


@trash_app.command("list")
def trash_list(json: bool = JsonOpt) -> None:
    """What the trash holds (the home trash and those of other mounted filesystems), newest first."""

    async def body(api: Any) -> None:
        items = await api.trash.list()
        if json:
            print_json([_item_json(i) for i in items])
            return
        rows = [
            (
                time.strftime("%Y-%m-%d %H:%M", time.localtime(i.deleted)),
                i.kind,
                human_size(i.size),
                i.path.path,
                os.path.basename(i.in_trash.path),
            )
            for i in items
        ]
        print_table(("deleted", "kind", "size", "original path", "name in trash"), rows)

    run_api(body)


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

    async def body(api: Any) -> None:
        restored: list[str] = []  # where each went, DEVICE:/path for another device's
        target = await api.resolve(here(to)) if to else None
        for key in keys:
            if split_remote(key) is not None or key.startswith(SCHEME):  # from that device's own trash
                if to:
                    fail("--to restores only from this device's trash")
                back = await api.trash.restore(await api.resolve(key))
            else:
                try:
                    back = await api.trash.restore(await api.resolve(here(key)), target)  # the path as typed
                except NotFound:
                    back = await api.trash.restore(key, target)  # or its name in the trash
            restored.append(await _typed(api, back))
        if json:
            print_json({"restored": restored})
        else:
            for path in restored:
                print(f"restored {display(path)}")

    run_api(body)


@trash_app.command("empty")
def trash_empty(
    older_than: str = typer.Option(
        None, "--older-than", help="Only what was trashed longer ago than this: 3d, 12h, 2w, a date, or a number of days."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    json: bool = JsonOpt,
) -> None:
    """Delete what the trash holds, for good."""
    try:
        seconds = parse_age(older_than) if older_than is not None else None
    except SdError as exc:
        fail(str(exc))
    if not yes:
        if not sys.stdin.isatty():
            fail("emptying the trash deletes files for good; add --yes to confirm")
        what = "everything in the trash" if older_than is None else f"what was trashed more than {older_than} ago"
        typer.confirm(f"Delete {what} for good?", abort=True)

    async def body(api: Any) -> None:
        emptied = await api.trash.empty(seconds)
        if json:
            print_json({"removed": emptied.items, "bytes": emptied.bytes})
        else:
            print(f"removed {count(emptied.items, 'item')}, {human_size(emptied.bytes)} freed")

    run_api(body)


def undo(
    show: bool = typer.Option(False, "--list", help="List what can be undone, newest first; undo nothing."),
    forget: bool = typer.Option(False, "--forget", help="Drop the last step without undoing it."),
    json: bool = JsonOpt,
) -> None:
    """Undo the last rename, move, trashing, tag or note (up to 50 back, newest first); never over a file
    changed since or a name taken since."""

    async def body(api: Any) -> None:
        if show:
            steps = await api.undo.list()
            if json:
                print_json([{"id": s.id, "what": s.what, "kind": s.kind, "when": s.when} for s in steps])
            elif not steps:
                print("nothing to undo", file=sys.stderr)
            else:
                when = [time.strftime("%Y-%m-%d %H:%M", time.localtime(s.when)) for s in steps]
                print_table(["WHEN", "WHAT"], zip(when, [s.what for s in steps], strict=True))
            return
        step = await api.undo.last()
        if step is None:
            fail("nothing to undo: renames, moves, trashings, tags and notes are undone, newest first")
        if forget:
            await api.undo.forget(step.id)
            print(f"dropped from the undo history: {display(step.what)}")
            return
        print(f"undoing: {display(step.what)}", file=sys.stderr)
        try:
            await api.undo.undo(step.id)
        except CannotUndo as exc:
            fail(f"{exc} (`sd undo --forget` drops this step)")
        if json:
            print_json({"undone": step.what, "kind": step.kind})
        else:
            print(f"undone: {display(step.what)}")

    run_api(body)
