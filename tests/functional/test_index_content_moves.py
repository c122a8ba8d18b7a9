"""A content index paused in its content phase, folders renamed meanwhile: every file still gets its cas_id."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sdcore.index import cas, indexer
from sdcore.index.indexer import IndexJob, index_location
from sdcore.library import Library


def make_tree(root: Path) -> None:
    for d in range(10):
        (root / f"album{d}").mkdir(parents=True)
        for f in range(40):
            (root / f"album{d}" / f"track{f:02}.txt").write_text(f"album {d} track {f}")


def content(library: Library) -> dict[str, tuple[str | None, str | None]]:
    """Each file's path in the location -> (cas_id, error)."""
    rows = library.read().execute(
        "SELECT p.path || '/' || e.name, c.cas_id, e.error FROM entries e JOIN directory_paths p ON p.entry_id = e.parent_id"
        " LEFT JOIN content_identities c ON c.id = e.content_id WHERE e.kind = 'file'"
    )
    return {path: (cas_id, error) for path, cas_id, error in rows}


async def test_files_of_a_folder_renamed_while_the_content_index_was_paused_get_their_cas_id(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "music"
    make_tree(root)
    write_content = IndexJob._write_content

    def pause_after_one_batch(self: IndexJob, ctx: Any, *args: Any) -> None:
        write_content(self, ctx, *args)
        ctx.pause_requested = True  # as Ctrl-C does, once the first files have their cas_id

    monkeypatch.setattr(indexer, "CONTENT_BATCH_MAX", indexer.CONTENT_BATCH_MIN)
    monkeypatch.setattr(indexer, "HASH_WHILE_WALKING", 0.0)  # every file read by the content phase
    monkeypatch.setattr(IndexJob, "_write_content", pause_after_one_batch)
    loc = library.locations.add(str(root), mode="content")
    job_id = await index_location(library, loc)
    assert (await library.jobs.wait(job_id)).state == "paused"
    monkeypatch.setattr(IndexJob, "_write_content", write_content)
    hashed = {path for path, (cas_id, _) in content(library).items() if cas_id}
    assert 0 < len(hashed) < 400, "the pause did not land in the content phase"
    for d in range(10):
        os.rename(root / f"album{d}", root / f"renamed{d}")

    record = await library.jobs.wait(await index_location(library, loc))  # resumes the paused job
    assert record.state == "completed"
    assert record.result.errors == 0, "files that moved are not unreadable"
    after = content(library)
    assert sorted(after) == sorted(f"renamed{d}/track{f:02}.txt" for d in range(10) for f in range(40))
    for path, (cas_id, error) in after.items():
        assert error is None and cas_id == cas.cas_id(str(root / path)), path


async def test_a_file_deleted_before_its_content_was_read_is_removed_not_unreadable(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "music"
    make_tree(root)
    write_content = IndexJob._write_content

    def pause_after_one_batch(self: IndexJob, ctx: Any, *args: Any) -> None:
        write_content(self, ctx, *args)
        ctx.pause_requested = True

    monkeypatch.setattr(indexer, "CONTENT_BATCH_MAX", indexer.CONTENT_BATCH_MIN)
    monkeypatch.setattr(indexer, "HASH_WHILE_WALKING", 0.0)  # every file read by the content phase
    monkeypatch.setattr(IndexJob, "_write_content", pause_after_one_batch)
    loc = library.locations.add(str(root), mode="content")
    assert (await library.jobs.wait(await index_location(library, loc))).state == "paused"
    monkeypatch.setattr(IndexJob, "_write_content", write_content)
    unhashed = sorted(path for path, (cas_id, _) in content(library).items() if not cas_id)
    for path in unhashed[:5]:
        (root / path).unlink()

    record = await library.jobs.wait(await index_location(library, loc))
    assert record.state == "completed"
    assert (record.result.errors, record.result.removed) == (0, 5)
    assert len(content(library)) == 395 and all(cas_id and not error for cas_id, error in content(library).values())


async def test_a_file_that_failed_to_be_read_is_tried_again_by_the_next_index(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "music"
    make_tree(root)
    loc = library.locations.add(str(root), mode="content")
    assert (await library.jobs.wait(await index_location(library, loc))).state == "completed"
    with library.write() as db:  # as an older version left a file it could not find where it looked
        db.execute("UPDATE entries SET content_id = NULL, error = 'No such file or directory' WHERE name = 'track07.txt'")
    record = await library.jobs.wait(await index_location(library, loc))
    assert record.result.errors == 0
    assert all(cas_id and not error for cas_id, error in content(library).values())
