"""The plan of a copy: where each source lands, the conflicts, the totals, decided before anything is written."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import pytest

from sdcore.fs.local import LocalFS
from sdcore.ops.plan import ConflictError, Plan, plan_transfer
from sdcore.sdpath import SdPath

DEVICE = uuid.uuid4()
ODD = os.fsdecode(b"caf\xe9 \xff.txt")  # not UTF-8: kept as surrogate escapes


def here(path: Path) -> SdPath:
    return SdPath(DEVICE, str(path))


def tree(tmp_path: Path) -> tuple[Path, Path]:
    """photos/ with a file, a symlink to it, an oddly named file, a subfolder; and a copy of it half there."""
    src = tmp_path / "photos"
    (src / "2024").mkdir(parents=True)
    (src / "a.jpg").write_bytes(b"12345")
    os.symlink("a.jpg", src / "latest")
    (src / ODD).write_bytes(b"odd")
    (src / "2024" / "b.jpg").write_bytes(b"1234567")
    dst = tmp_path / "backup" / "photos"
    dst.mkdir(parents=True)
    (dst / "a.jpg").write_bytes(b"older")
    return src, dst


async def plan(src: Path, dst: Path, on_conflict: str) -> Plan:
    fs = LocalFS()
    return await plan_transfer(
        lambda _device: fs, [here(src)], [here(dst)], on_conflict=on_conflict, moving=False
    )


async def test_a_copy_onto_a_half_done_backup_plans_every_file_and_names_the_one_conflict(
    tmp_path: Path,
) -> None:
    src, dst = tree(tmp_path)
    planned = await plan(src, dst, "rename")
    assert planned.transfers == ((here(src), here(dst)),)
    assert planned.conflicts == (str(dst / "a.jpg"),)
    assert planned.on_conflict == "rename"
    assert planned.total_files == 4  # a.jpg, the symlink, the odd name, 2024/b.jpg
    assert planned.total_bytes == 5 + 3 + 7  # a symlink is written, its target's bytes are not
    with pytest.raises(dataclasses.FrozenInstanceError):
        planned.total_files = 0  # type: ignore[misc]


async def test_skipping_conflicts_leaves_them_out_of_the_totals(tmp_path: Path) -> None:
    src, dst = tree(tmp_path)
    planned = await plan(src, dst, "skip")
    assert (planned.total_files, planned.total_bytes) == (3, 3 + 7)
    assert planned.conflicts == (str(dst / "a.jpg"),)


async def test_a_copy_that_would_fail_on_a_conflict_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    src, dst = tree(tmp_path)
    with pytest.raises(ConflictError, match="1 item exists at the destination: .*a.jpg"):
        await plan(src, dst, "fail")
    assert sorted(os.listdir(dst)) == ["a.jpg"] and (dst / "a.jpg").read_bytes() == b"older"


async def test_a_file_never_replaces_a_folder_even_with_overwrite(tmp_path: Path) -> None:
    src, dst = tree(tmp_path)
    (dst / ODD).mkdir()
    with pytest.raises(ConflictError, match="is a directory; a file never replaces a directory"):
        await plan(src, dst, "overwrite")
