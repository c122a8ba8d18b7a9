"""Job results as typed records, also for rows an older version wrote in the jobs table."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import msgpack
import pytest

from sdcore import ops
from sdcore.core import Core
from sdcore.jobs.results import DeletedItem, DeleteResult, IndexResult, Outcome, TransferResult
from sdcore.library.library import Library


def store(library: Library, kind: str, result: dict) -> str:
    """A finished job's row as an older version left it."""
    job_id = uuid.uuid4().hex[:12]
    with library.write() as db:
        db.execute(
            "INSERT INTO jobs (id, name, state, result, created, updated, message)"
            " VALUES (?, ?, 'completed', ?, ?, ?, '')",
            (job_id, kind, msgpack.packb(result), time.time(), time.time()),
        )
    return job_id


def test_a_trash_job_from_before_outcomes_were_stored_still_says_where_each_item_went(
    library: Library,
) -> None:
    job_id = store(
        library,
        "delete",
        {
            "trashed": [["/home/u/a", "/home/u/.local/share/Trash/files/a"]],
            "deleted": 0,
            "vanished": ["/home/u/b"],
        },
    )
    assert library.jobs.get(job_id).result == DeleteResult(
        (
            DeletedItem("/home/u/a", Outcome.TRASHED, "/home/u/.local/share/Trash/files/a"),
            DeletedItem("/home/u/b", Outcome.VANISHED),
        )
    )


def test_a_copy_job_from_before_totals_and_targets_were_stored_decodes(library: Library) -> None:
    job_id = store(
        library,
        "move",
        {"files": 3, "bytes": 30, "skipped": [], "vanished": ["/x"], "unsupported": [], "verified": True},
    )
    result = library.jobs.get(job_id).result
    assert result == TransferResult(
        moved=True, files=3, bytes=30, total_files=3, total_bytes=30, vanished=("/x",), verified=True
    )
    assert result.verb == "moved"


async def test_a_copy_result_is_stored_as_it_was_and_read_back_typed(
    core: Core, library: Library, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_bytes(b"abc")
    (tmp_path / "dst").mkdir()
    job_id = await ops.copy(
        library, [core.local_path(str(tmp_path / "src"))], core.local_path(str(tmp_path / "dst"))
    )
    record = await library.jobs.wait(job_id)
    assert record.result == TransferResult(
        moved=False, files=1, bytes=3, total_files=1, total_bytes=3, targets=(str(tmp_path / "dst" / "src"),)
    )
    assert record.stored_result == record.result.to_dict()  # what `sd cp --json` prints


async def test_a_trash_job_result_says_where_each_item_lies_in_the_trash(
    core: Core, library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    (tmp_path / "a").write_text("first")
    (tmp_path / "b").write_text("second")
    paths = [core.local_path(str(tmp_path / name)) for name in ("b", "a")]
    record = await library.jobs.wait(await ops.delete(library, paths))
    assert [(i.path, i.outcome) for i in record.result.items] == [
        (str(tmp_path / "b"), Outcome.TRASHED),
        (str(tmp_path / "a"), Outcome.TRASHED),
    ]
    assert [Path(i.trashed_at).read_text() for i in record.result.items] == ["second", "first"]
    assert DeleteResult.from_dict(record.stored_result) == record.result


def test_an_index_job_from_before_media_was_described_decodes(library: Library) -> None:
    counts = {"dirs": 2, "found": 9, "added": 9, "changed": 0, "moved": 0, "removed": 0, "errors": 1, "hashed": 7}
    job_id = store(library, "index", counts)
    result = library.jobs.get(job_id).result
    assert result == IndexResult(**counts) and result.described == 0
    assert result.to_dict() == {**counts, "described": 0}  # what `sd index --json` prints
