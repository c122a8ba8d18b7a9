"""Disk usage (`api.usage`) counts what `du` counts: the disk's blocks (a sparse file or /proc/kcore takes little), a
file of several hard links once, a folder's own blocks; apparent sizes (`du --apparent-size`) when asked."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.core import Core
from sdcore.sdpath import SdPath


def du(*paths: Path, apparent: bool = False) -> int:
    """Bytes `du -s` counts for these paths together (a hard link met twice counted once)."""
    flags = ["-s", "-c", "-B1"] + (["--apparent-size"] if apparent else [])
    done = subprocess.run(["du", *flags, *map(str, paths)], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1].split()[0])


def a_tree_with_holes_and_links(root: Path) -> Path:
    (root / "sparse").mkdir(parents=True)
    with open(root / "sparse" / "disk.img", "wb") as f:
        f.truncate(512 << 20)  # 512 MiB that take no block
        f.write(os.urandom(10_000))
    (root / "photos" / "2024").mkdir(parents=True)
    (root / "photos" / "2024" / "a.jpg").write_bytes(os.urandom(200_000))
    os.link(root / "photos" / "2024" / "a.jpg", root / "photos" / "a-again.jpg")  # the same file, twice in photos/
    (root / "backup").mkdir()
    os.link(root / "photos" / "2024" / "a.jpg", root / "backup" / "a.jpg")  # and once more in another folder
    (root / "notes.txt").write_bytes(os.urandom(5_000))
    os.symlink("notes.txt", root / "link")
    return root


@pytest.mark.skipif(shutil.which("du") is None, reason="compares with du, which is not installed")
async def test_disk_usage_counts_blocks_and_hard_links_once_as_du_does(tmp_path: Path) -> None:
    tree = a_tree_with_holes_and_links(tmp_path / "tree")
    async with Core(tmp_path / "data") as core:
        api = Api(core)
        folder = SdPath(core.device.id, str(tree))
        sizes: dict[str, int] = {}
        async for batch in api.usage(folder):
            sizes.update({e.name: e.size for e in batch})
        children = sorted(tree.iterdir())
        assert sum(sizes.values()) + os.lstat(tree).st_blocks * 512 == du(tree)  # every child, the links once
        assert sizes["sparse"] == du(tree / "sparse") < 1 << 20  # not 512 MiB
        # a.jpg, a-again.jpg and backup/a.jpg are one file: counted in the folder walked first, once in all
        assert sizes["photos"] + sizes["backup"] == du(tree / "photos", tree / "backup")
        assert du(tree / "photos") + du(tree / "backup") > du(tree / "photos", tree / "backup")
        apparent: dict[str, int] = {}
        async for batch in api.usage(folder, apparent=True):
            apparent.update({e.name: e.size for e in batch})
        assert apparent["photos"] + apparent["backup"] == 200_000
        assert apparent | {"photos": 0, "backup": 0} == {"sparse": 512 << 20, "photos": 0, "backup": 0, "notes.txt": 5_000,
                                                         "link": 9}  # fmt: skip
        assert len(children) == 5


@pytest.mark.skipif(not os.path.exists("/proc/kcore"), reason="needs /proc/kcore")
async def test_proc_kcore_is_not_counted_as_terabytes(tmp_path: Path) -> None:
    async with Core(tmp_path / "data") as core:
        api = Api(core)
        async for first in api.usage(SdPath(core.device.id, "/proc")):  # its files: the first answer
            kcore = next(e for e in first if e.name == "kcore")
            break
        assert kcore.size == 0  # st_size says 128 TB, a file of the kernel's memory: no block of the disk
