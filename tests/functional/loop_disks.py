"""Real disks for the volume tests: filesystem images made with mkfs and loop-mounted where a test likes (root
only; a test skips with the reason where it may not mount)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

MKFS = {"ext4": ["mkfs.ext4", "-q", "-L"], "vfat": ["mkfs.vfat", "-F", "32", "-n"]}


class Disk:
    """A filesystem image that a test mounts and unmounts where it likes."""

    def __init__(self, image: Path) -> None:
        self.image = image
        self.mounted: list[Path] = []

    def mount(self, point: Path, *options: str) -> None:
        point.mkdir(parents=True, exist_ok=True)
        opts = ",".join(("loop", *options))
        done = subprocess.run(
            ["mount", "-o", opts, str(self.image), str(point)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"this machine does not let a test mount a loop image: {done.stderr.strip()}")
        self.mounted.append(point)

    def remount(self, point: Path, *options: str) -> None:
        subprocess.run(["mount", "-o", ",".join(("remount", *options)), str(point)], check=True)

    def umount(self, point: Path, *, lazy: bool = False) -> None:
        subprocess.run(["umount", *(["-l"] if lazy else []), str(point)], check=True)
        self.mounted.remove(point)

    def umount_all(self) -> None:
        for point in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(point)], check=False)
        self.mounted.clear()


def make_disk(
    image: Path, fs: str = "ext4", label: str = "MY PHOTOS", megabytes: int = 8, uuid: str | None = None
) -> Disk:
    """A fresh, sparse image of `fs` (ext4 with the filesystem UUID `uuid`, as a cloned disk has, if given); skips the
    test where it cannot be made or mounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a disk image needs root (CI runs as root)")
    if shutil.which(MKFS[fs][0]) is None or shutil.which("mount") is None:
        pytest.skip(f"{MKFS[fs][0]} and mount are needed to make and mount a disk image ({fs})")
    with open(image, "wb") as f:
        f.truncate(megabytes << 20)
    subprocess.run([*MKFS[fs], label, *(["-U", uuid] if uuid else []), str(image)], check=True, capture_output=True)
    return Disk(image)


def uuid_of(image: Path) -> str:
    """The filesystem UUID of an image, read from its superblock."""
    done = subprocess.run(["blkid", "-c", "/dev/null", "-s", "UUID", "-o", "value", str(image)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout.strip()
