"""Real disks for the volume tests: filesystem images made with mkfs and loop-mounted where a test likes (root
only; a test skips with the reason where it may not mount). FAT and exFAT images are mounted by the kernel where
it has their filesystem, else through FUSE as a person without it would: FAT by fusefat (mount type
`fuse.fusefat`), exFAT by exfat-fuse on a loop device (`fuseblk`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

MKFS = {"ext4": ["mkfs.ext4", "-q", "-L"], "vfat": ["mkfs.vfat", "-F", "32", "-n"], "exfat": ["mkfs.exfat", "-L"]}
FUSE = {"vfat": "fusefat", "exfat": "mount.exfat-fuse"}
"""The FUSE driver that mounts a format where the kernel has no filesystem for it (Debian: fusefat, exfat-fuse)."""


class Disk:
    """A filesystem image that a test mounts and unmounts where it likes."""

    def __init__(self, image: Path, fs: str) -> None:
        self.image = image
        self.fs = fs
        self.mounted: list[Path] = []
        self.driver: subprocess.Popen[bytes] | None = None
        """fusefat serving the image, where the kernel could not mount it."""
        self.loop: str | None = None
        """The loop device exfat-fuse serves the image from."""

    def mount(self, point: Path, *options: str) -> None:
        point.mkdir(parents=True, exist_ok=True)
        opts = ",".join(("loop", *options))
        done = subprocess.run(
            ["mount", "-o", opts, str(self.image), str(point)], capture_output=True, text=True
        )
        if done.returncode != 0 and self.fs in FUSE:
            self._fuse_mount(point, options, why=done.stderr.strip())
        elif done.returncode != 0:
            pytest.skip(f"this machine does not let a test mount a loop image: {done.stderr.strip()}")
        self.mounted.append(point)

    def _fuse_mount(self, point: Path, options: tuple[str, ...], why: str) -> None:
        driver = FUSE[self.fs]
        if shutil.which(driver) is None or not os.path.exists("/dev/fuse"):
            pytest.skip(f"the kernel mounts no {self.fs} image here ({why}) and {driver} or /dev/fuse is missing")
        self._driver_gone()  # two drivers writing one image would break it
        if self.fs == "exfat":  # it serves block devices only
            self.loop = subprocess.run(
                ["losetup", "-f", "--show", str(self.image)], capture_output=True, text=True, check=True
            ).stdout.strip()
            ro = ["-o", "ro"] if "ro" in options else []
            done = subprocess.run([driver, *ro, self.loop, str(point)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"the kernel mounts no exFAT image here ({why}), nor did {driver}: {done.stderr}")
            return
        rw = [] if "ro" in options else ["-o", "rw+"]
        self.driver = subprocess.Popen(  # -s: one request at a time, as a person's one copy makes them
            ["fusefat", "-f", "-s", *rw, str(self.image), str(point)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not os.path.ismount(point):
            if self.driver.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"the kernel mounts no FAT image here ({why}) and fusefat did not mount it either")
            time.sleep(0.01)

    def _driver_gone(self, timeout: float = 30) -> None:
        """Wait for fusefat to end once nothing holds its unmounted filesystem (a lazy unmount ends it then)."""
        if self.driver is None:
            return
        try:
            self.driver.wait(timeout)
        except subprocess.TimeoutExpired:
            self.driver.kill()
            self.driver.wait()
            held = sorted({os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")} - {"/dev/null"})
            pytest.fail(f"fusefat did not end {timeout:.0f} s after its unmount: something holds the disk (open here: {held})")
        finally:
            self.driver = None

    def remount(self, point: Path, *options: str) -> None:
        subprocess.run(["mount", "-o", ",".join(("remount", *options)), str(point)], check=True)

    def umount(self, point: Path, *, lazy: bool = False) -> None:
        """Unmount as a person does: again while it is busy for a moment (the explorer's preview of the file under
        the cursor, a listing of it, still being read), for up to 10 s."""
        deadline = time.monotonic() + 10
        while (done := subprocess.run(["umount", *(["-l"] if lazy else []), str(point)], capture_output=True, text=True)).returncode:
            assert "busy" in done.stderr and time.monotonic() < deadline, done.stderr
            time.sleep(0.2)
        self.mounted.remove(point)
        if not lazy:
            self._driver_gone()
            self._loop_gone()

    def umount_all(self) -> None:
        for point in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(point)], check=False)
        self.mounted.clear()
        self._driver_gone(timeout=10)
        self._loop_gone()

    def _loop_gone(self) -> None:
        if self.loop is not None:  # detached now, or when its lazily unmounted filesystem is let go
            subprocess.run(["losetup", "-d", self.loop], check=False)
            self.loop = None


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
    return Disk(image, fs)


def uuid_of(image: Path) -> str:
    """The filesystem UUID of an image, read from its superblock."""
    done = subprocess.run(["blkid", "-c", "/dev/null", "-s", "UUID", "-o", "value", str(image)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout.strip()
