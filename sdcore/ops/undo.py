"""Undo: the last operations on a library's files and their tags and notes (rename, bulk rename, move, trash, tag,
note), kept in the library's folder across restarts, each put back only while nothing changed since.

A step that a paired device's core did for this device's user (a move between two of its folders, a tag in its
library) is in that device's history; this one keeps a step of kind REMOTE that says where, and undoing it asks that
core to undo its own step (sdcore.api.undo)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdcore.errors import AlreadyExists, CannotUndo, NotFound
from sdcore.ops.walk import stat_or_none
from sdcore.sdpath import SdPath, display

if TYPE_CHECKING:
    from sdcore.fs.base import EntryInfo, FileSystem
    from sdcore.jobs.job import Job
    from sdcore.library.library import Library

log = logging.getLogger(__name__)

FILE = "undo.json"
"""The undo history, in the library's folder."""
KEEP = 50
"""How many steps the history keeps (the oldest go first)."""
REMOTE = "remote"
"""The kind of a step done by a paired device's core: its data names the device, and its job or its own step."""

_lock = threading.Lock()  # steps are recorded from jobs (the event loop) and from tagging (worker threads)


@dataclass(frozen=True, slots=True)
class Step:
    """One undoable step: its number, its kind, what it did (for people), when, and what undoing it needs."""

    id: int
    kind: str  # rename | move | trash | tag | untag | note | remote
    what: str
    when: float
    data: dict[str, Any]


def history(library: Library) -> list[Step]:
    """The steps that can be undone, oldest first."""
    return [Step(**s) for s in _read(library)["steps"]]


def record(library: Library, kind: str, what: str, data: dict[str, Any]) -> Step:
    """Add a step to the history (the oldest goes past KEEP)."""
    with _lock:
        stored = _read(library)
        step = Step(stored["next"], kind, what, time.time(), data)
        stored["steps"] = [*stored["steps"], _as_dict(step)][-KEEP:]
        stored["next"] += 1
        _write(library, stored)
    return step


def restored(library: Library, in_trash: Sequence[SdPath]) -> None:
    """What was put back from the trash otherwise (`U`, `sd trash restore`): the trashings it undid leave the history."""
    back = {str(p) for p in in_trash}
    with _lock:
        stored = _read(library)
        kept = [s for s in stored["steps"] if not (s["kind"] == "trash" and {i[1] for i in s["data"]["items"]} <= back)]
        if len(kept) != len(stored["steps"]):
            stored["steps"] = kept
            _write(library, stored)


def of_job(library: Library, job_id: str) -> Step | None:
    """The step a finished job recorded (None: none, or no longer in the history)."""
    return next((s for s in history(library) if s.data.get("job") == job_id), None)


def remember_remote(
    library: Library, device: str, what: str, *, job: str | None = None, step: int | None = None,
    when: float | None = None,
) -> Step:  # fmt: skip
    """Note a step that `device`'s core did for this device's user: its job `job` (its step once finished), or its
    own step `step` done at `when` (a number alone may name another step there later: its history lost, begun again)."""
    return record(library, REMOTE, what, {"device": device, "job": job, "step": step, "when": when})


def forget(library: Library, step_id: int) -> None:
    """Take a step out of the history (undone, or given up)."""
    with _lock:
        stored = _read(library)
        stored["steps"] = [s for s in stored["steps"] if s["id"] != step_id]
        _write(library, stored)


def _read(library: Library) -> dict[str, Any]:
    try:
        data = json.loads((library.folder / FILE).read_text())
        if isinstance(data, dict) and isinstance(data.get("steps"), list) and isinstance(data.get("next"), int):
            return data
        log.warning("%s: not an undo history; starting a new one", library.folder / FILE)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read the undo history (%s); starting a new one", library.folder / FILE, exc)
    return {"next": 1, "steps": []}


def _write(library: Library, data: dict[str, Any]) -> None:
    path = library.folder / FILE
    temp = path.with_name(f".{FILE}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only, as the rest of the data dir
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(data))  # ensure_ascii: a name that is not UTF-8 (a lone surrogate) is kept as \\udcxx
    os.replace(temp, path)


def _as_dict(step: Step) -> dict[str, Any]:
    return {"id": step.id, "kind": step.kind, "what": step.what, "when": step.when, "data": step.data}


# -- what a finished job recorded ----------------------------------------------------------------


async def job_finished(library: Library, job: Job, result: Any, job_id: str | None = None) -> None:
    """Record what a rename, bulk rename, move or trash job did, unless the job is itself an undo (the step keeps the
    job's id: a device that asked for the job finds its step by it)."""
    if getattr(job, "undoing", False) or not isinstance(result, dict):
        return
    fs_for = library.context.fs_for
    kind = job.kind
    if kind == "rename":
        before = SdPath.parse_canonical(job.path)  # type: ignore[attr-defined]
        after = before.parent.child(job.new_name)  # type: ignore[attr-defined]
        pairs = [(before, after)]
    elif kind == "bulk-rename":
        pairs = [(p := SdPath.parse_canonical(t), p.parent.child(n)) for t, n in zip(job.paths, job.names, strict=True)]  # type: ignore[attr-defined]
    elif kind == "move":
        pairs = _moved(job)
    elif kind == "delete" and not job.permanent:  # type: ignore[attr-defined]
        _trashed(library, job, job_id)
        return
    else:
        return
    items: list[list[Any]] = []
    for before, after in pairs:
        info = await stat_or_none(fs_for(after.device_id), after.path)
        if info is not None:
            items.append([str(before), str(after), _mark(info)])
    if not items:
        return
    if kind == "move":
        first, landed = SdPath.parse_canonical(items[0][0]), SdPath.parse_canonical(items[0][1])
        renamed = len(items) == 1 and landed.name != first.name  # `sd mv a b`: said with its new name
        where = display(landed.path if renamed else landed.parent.path)
        what = f"move {_names([SdPath.parse_canonical(i[0]) for i in items])} to {where}"
    elif len(items) == 1:
        what = f"rename {display(SdPath.parse_canonical(items[0][0]).name)} to {display(SdPath.parse_canonical(items[0][1]).name)}"
    else:
        what = f"rename {len(items)} files"
    record(library, "move" if kind == "move" else "rename", what, {"items": items, "job": job_id})


def _trashed(library: Library, job: Any, job_id: str | None) -> None:
    """Record what a deletion sent to the trash: where each was, where it lies in its device's trash."""
    lying = iter(job.trashed)
    items = []
    for path, outcome in zip(job.paths, job.outcomes, strict=False):
        if outcome == "trashed":
            was, where = next(lying)
            device = SdPath.parse_canonical(path).device_id
            items.append([str(SdPath(device, was)), str(SdPath(device, where))])
    if items:
        record(library, "trash", f"trash {_names([SdPath.parse_canonical(i[0]) for i in items])}", {"items": items, "job": job_id})


def _moved(job: Any) -> list[tuple[SdPath, SdPath]]:
    """Each source of a finished move and where it landed. Left out: those skipped or gone before their turn, and
    those that merged into a folder or replaced a file already there (moving that back would take what was there
    before with it, or cannot bring back what was replaced)."""
    left = set(job.skipped) | set(job.vanished)
    pairs = []
    for source, target in zip(job.sources, job.targets, strict=True):
        src, dst = SdPath.parse_canonical(source), SdPath.parse_canonical(target)
        landed = job.renames.get(dst.path, dst.path)
        replaced = dst.path in job.conflicts and dst.path not in job.renames
        if src.path in left or dst.path in left or replaced or dst.path in job.merged:
            continue
        pairs.append((src, SdPath(dst.device_id, landed)))
    return pairs


def _mark(info: EntryInfo) -> list[Any]:
    """What tells whether an entry changed since: a file's size and time, a folder's inode, a link's target."""
    if info.kind == "file":
        return [info.kind, info.size, info.mtime]
    if info.kind == "symlink":
        return [info.kind, info.link_target]
    return [info.kind, info.inode]


def _names(paths: Sequence[SdPath]) -> str:
    return display(paths[0].name) if len(paths) == 1 else f"{len(paths)} items"


# -- undoing ---------------------------------------------------------------------------------------


async def undo(library: Library, step: Step) -> None:
    """Put back what `step` did, or raise CannotUndo (nothing done) when a file changed or a name is taken since."""
    data = step.data
    if step.kind == "rename":
        await _undo_renames(library, step, data["items"])
    elif step.kind == "move":
        await _undo_move(library, step, data["items"])
    elif step.kind == "trash":
        await _undo_trash(library, step, data["items"])
    elif step.kind in ("tag", "untag", "note"):
        from sdcore.api.library import in_thread

        undone = {"tag": _undo_tag, "untag": _undo_untag, "note": _undo_note}[step.kind]
        await in_thread(library, undone, library, step)
    else:
        raise CannotUndo(f"cannot undo {step.what}: a step of another version of sdtui")
    forget(library, step.id)


async def _check_moved_back(library: Library, step: Step, items: list[list[Any]]) -> list[tuple[SdPath, SdPath]]:
    """(where each is now, where it was), once each is as it was left and its old place is free (or is left by
    another of them: a swap)."""
    pairs = [(SdPath.parse_canonical(i[1]), SdPath.parse_canonical(i[0])) for i in items]
    leaving = {now for now, _ in pairs}
    for (now, was), item in zip(pairs, items, strict=True):
        fs = library.context.fs_for(now.device_id)
        info = await _stat_or_refuse(fs, now, step)
        if _mark(info) != item[2]:
            raise CannotUndo(f"cannot undo {step.what}: {display(now.path)} was changed since; nothing done")
        if was not in leaving and await stat_or_none(library.context.fs_for(was.device_id), was.path) is not None:
            raise CannotUndo(f"cannot undo {step.what}: {display(was.path)} exists again; move it away first, nothing done")
    return pairs


async def _stat_or_refuse(fs: FileSystem, path: SdPath, step: Step) -> EntryInfo:
    try:
        return await fs.stat(path.path)
    except NotFound:
        raise CannotUndo(f"cannot undo {step.what}: {display(path.path)} is no longer there; nothing done") from None


async def _undo_renames(library: Library, step: Step, items: list[list[Any]]) -> None:
    from sdcore.api.library import wait_for
    from sdcore.ops.bulkrename import BulkRenameJob

    pairs = await _check_moved_back(library, step, items)
    job = BulkRenameJob([str(now) for now, _ in pairs], [was.name for _, was in pairs])
    job.undoing = True  # type: ignore[attr-defined]  # not recorded as a step of its own
    await wait_for(library, await library.jobs.start(job))


async def _undo_move(library: Library, step: Step, items: list[list[Any]]) -> None:
    from sdcore.api.library import wait_for
    from sdcore.ops.transfer import MoveJob

    pairs = await _check_moved_back(library, step, items)
    for _, was in pairs:
        if await stat_or_none(library.context.fs_for(was.device_id), was.parent.path) is None:
            raise CannotUndo(f"cannot undo {step.what}: its folder {display(was.parent.path)} is gone; nothing done")
    job = MoveJob(sources=[str(now) for now, _ in pairs], targets=[str(was) for _, was in pairs], verify=True)
    job.undoing = True  # type: ignore[attr-defined]
    await wait_for(library, await library.jobs.start(job))


async def _undo_trash(library: Library, step: Step, items: list[list[str]]) -> None:
    from sdcore.ops.follow import follow_changes

    pairs = [(SdPath.parse_canonical(was), SdPath.parse_canonical(where)) for was, where in items]
    for was, _ in pairs:
        if await stat_or_none(library.context.fs_for(was.device_id), was.path) is not None:
            raise CannotUndo(f"cannot undo {step.what}: {display(was.path)} exists again; move it away first, nothing done")
    restored = []
    try:
        for was, where in pairs:
            try:
                await library.context.fs_for(where.device_id).restore(where.path)
            except NotFound:
                raise CannotUndo(f"cannot undo {step.what}: {display(was.name)} is no longer in the trash") from None
            except AlreadyExists:
                raise CannotUndo(f"cannot undo {step.what}: {display(was.path)} exists again; move it away first") from None
            restored.append(was)
    finally:
        if restored:
            await follow_changes(library, entries=restored)


def _undo_tag(library: Library, step: Step) -> None:
    from sdcore import tags

    data = step.data
    try:
        tags.remove(library, data["tag"], data["entries"], data.get("content", False))
    except NotFound:
        raise CannotUndo(f"cannot undo {step.what}: the tag is gone since; nothing done") from None
    if data.get("created") and not tags.entries(library, data["tag"], nested=True):
        tags.delete(library, data["tag"], False)


def _undo_untag(library: Library, step: Step) -> None:
    from sdcore import tags

    data = step.data
    try:
        tags.assign(library, data["tag"], data["entries"], content=data.get("content", False))
    except NotFound:
        raise CannotUndo(f"cannot undo {step.what}: the tag is gone since; make it again first, nothing done") from None


def _undo_note(library: Library, step: Step) -> None:
    from sdcore import metadata

    data = step.data
    if metadata.note(library, data["entry"]) != data["after"]:
        raise CannotUndo(f"cannot undo {step.what}: the note was changed since; nothing done")
    metadata.set_note(library, data["entry"], data["before"])
