"""Volumes: the mounted filesystems a person would browse, each known by its identity rather than its mount
point, and a watcher that says when one comes or goes."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import select
import shutil
import stat
import struct
import subprocess
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdcore.errors import SdError

MOUNTINFO = "/proc/self/mountinfo"
"""What the kernel says is mounted in this process's namespace (it signals changes through poll: POLLPRI)."""
ID_FILE = ".sdvolume"
"""The id file written at a volume's root on first use when the OS tells no filesystem UUID."""

PSEUDO_FS = frozenset(
    "proc sysfs devpts devtmpfs cgroup cgroup2 mqueue securityfs debugfs tracefs pstore bpf configfs fusectl "
    "hugetlbfs autofs binfmt_misc nsfs rpc_pipefs efivarfs overlay squashfs tmpfs ramfs shm".split()
)
"""Filesystem types that are not volumes a person would browse (the system's own, memory, images of snaps)."""
NETWORK_FS = frozenset({"nfs", "nfs4", "cifs", "smb3", "fuseblk", "9p"})
"""Filesystems a volume may have without a /dev/ source."""
FUSE_DRIVERS = {"fusefat": "vfat", "vfat": "vfat", "msdos": "msdos", "exfat": "exfat", "exfat-fuse": "exfat"}
"""The disk format a FUSE driver serves, by the subtype it mounts with (mountinfo's type `fuse.SUBTYPE`, as
fusefat's `fuse.fusefat`, or `fuseblk.SUBTYPE`); its source is a name it chose, not a device."""
HIDDEN_POINTS = ("/proc", "/sys", "/dev", "/run/user", "/snap", "/boot/efi", "/etc/")
"""Mount points under which nothing is a volume to browse (the system's own files, bind-mounted config)."""
SYSTEM_POINTS = frozenset({"/", "/home", "/boot", "/usr", "/var", "/opt", "/srv", "/tmp"})
"""Mount points of the system's own volumes."""


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/self/mountinfo, escapes undone."""

    mount_id: int
    device: str
    """MAJOR:MINOR of the filesystem."""
    root: str
    """The folder of the filesystem mounted here ("/" unless a bind mount of a part of it)."""
    point: str
    read_only: bool
    fs_type: str
    source: str


@dataclass(frozen=True, slots=True)
class Volume:
    """A mounted volume as a person sees it."""

    id: str
    """`uuid:...` (the filesystem's UUID), `file:...` (its id file) or `fingerprint:...` (label, size, type)."""
    label: str
    fs_type: str
    mount_point: str
    source: str
    size: int
    free: int
    removable: bool
    system: bool
    read_only: bool

    @property
    def name(self) -> str:
        """What to call it: its label, else its device's name, else its mount point."""
        if self.label:
            return self.label
        return os.path.basename(self.source) if self.source.startswith("/dev/") else self.mount_point


def unescape(field: str) -> str:
    """A mountinfo field with the kernel's octal escapes (`\\040` space, `\\011` tab, `\\012`, `\\134`) undone,
    byte-exact: a name in another encoding than UTF-8 comes back as os.fsdecode makes it."""
    if "\\" not in field:
        return field
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), os.fsencode(field))
    return os.fsdecode(raw)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of mountinfo text (proc(5)); malformed lines are skipped."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
            mount_id = int(fields[0])
        except ValueError:
            continue
        if len(fields) < dash + 3:
            continue
        options = fields[5].split(",")
        mounts.append(
            Mount(
                mount_id=mount_id,
                device=fields[2],
                root=unescape(fields[3]),
                point=unescape(fields[4]),
                read_only="ro" in options,
                fs_type=fields[dash + 1],
                source=unescape(fields[dash + 2]),
            )
        )
    return mounts


def browsable(mounts: list[Mount]) -> list[Mount]:
    """The mounts that are volumes a person would browse: real filesystems on a device or the network, not
    the system's pseudo ones, each mount point once (the last mount over it wins, as the kernel shows it),
    never a folder of a volume bind-mounted elsewhere while the volume shows at its own root, and never a
    single file bind-mounted (podman's /run/.containerenv, /etc/hosts)."""
    whole = {m.device for m in mounts if m.root == "/"}
    found: dict[str, Mount] = {}
    for mount in mounts:
        if mount.fs_type in PSEUDO_FS or mount.point.startswith(HIDDEN_POINTS):
            continue
        on_disk_or_network = mount.source.startswith("/dev/") or mount.fs_type in NETWORK_FS
        if not (on_disk_or_network or _fuse_subtype(mount) in FUSE_DRIVERS):
            continue
        if mount.root != "/" and (mount.device in whole or not _is_dir(mount.point)):
            continue  # a folder of a volume shown at its root anyway, or a file
        found.pop(mount.point, None)
        found[mount.point] = mount
    return list(found.values())


def _fuse_subtype(mount: Mount) -> str | None:
    """The FUSE driver's subtype of a FUSE mount (`fuse.fusefat` -> fusefat; "" for a plain fuse/fuseblk), else None."""
    kind, _, subtype = mount.fs_type.partition(".")
    return subtype if kind in ("fuse", "fuseblk") else None


UDEV_DATA = "/run/udev/data"
"""What udev read of each device (`bMAJOR:MINOR` files: `E:ID_FS_TYPE=exfat`), readable without root."""


def disk_format(mount: Mount) -> str:
    """The filesystem on a mount's disk: its mountinfo type, but for a FUSE driver the format it serves (fusefat's
    `fuse.fusefat` is vfat; a plain `fuseblk`, as exfat-fuse and ntfs-3g mount a device, is what udev or blkid read
    on that device)."""
    subtype = _fuse_subtype(mount)
    if subtype is None:
        return mount.fs_type
    if subtype:
        return FUSE_DRIVERS.get(subtype, mount.fs_type)
    if mount.fs_type != "fuseblk" or not mount.source.startswith("/dev/"):
        return mount.fs_type
    with suppress(OSError):
        for line in Path(UDEV_DATA, f"b{mount.device}").read_text(errors="replace").splitlines():
            if line.startswith("E:ID_FS_TYPE="):
                return line.partition("=")[2] or mount.fs_type
    device = os.path.realpath(mount.source)
    return _blkid([device]).get(device, {}).get("TYPE") or mount.fs_type


def _is_dir(path: str) -> bool:
    try:
        return os.path.isdir(path)
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the OS tells of the block devices: UUIDs and labels by device path (/dev/disk/by-*)."""

    uuids: dict[str, str]
    labels: dict[str, str]
    untold: frozenset[str] = frozenset()
    """Devices blkid was asked of and did not answer for, twice (it failed or timed out: a loaded machine)."""

    @classmethod
    def read(cls, devices: Sequence[str] = (), disk_dir: str = "/dev/disk") -> DeviceFacts:
        """What udev's links tell; for `devices` they do not name (a container has no /dev/disk), blkid's answer
        (asked once more for those it did not answer for)."""
        uuids, labels = _links(os.path.join(disk_dir, "by-uuid")), _links(os.path.join(disk_dir, "by-label"))
        untold = [d for d in devices if d not in uuids]
        if not untold or not shutil.which("blkid"):
            return cls(uuids, labels)
        told = _blkid(untold)
        if missed := [d for d in untold if d not in told]:
            told.update(_blkid(missed))
        for device, fields in told.items():
            if "UUID" in fields:
                uuids[device] = fields["UUID"]
            if "LABEL" in fields:
                labels.setdefault(device, fields["LABEL"])
        return cls(uuids, labels, frozenset(d for d in untold if d not in told))


BLKID_TIMEOUT = 5.0
"""Seconds blkid may take to read a device's superblock before it is asked again (then its last answer holds)."""


def _blkid(devices: Sequence[str]) -> dict[str, dict[str, str]]:
    """blkid's UUID and LABEL of the devices (read from their superblocks now, never from blkid's cache: a loop or
    USB device's name is reused for another disk; root may read them); a device it failed on is left out."""
    try:
        done = subprocess.run(
            ["blkid", "-c", "/dev/null", "-o", "export", "--", *devices], capture_output=True, text=True,
            timeout=BLKID_TIMEOUT, stdin=subprocess.DEVNULL, errors="surrogateescape",
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found: dict[str, dict[str, str]] = {}
    for block in done.stdout.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition("=")
            fields[key] = re.sub(r"\\(.)", r"\1", value)  # export's shell escapes: `MY\ DISK`
        if "DEVNAME" in fields:
            found[os.path.realpath(fields["DEVNAME"])] = fields
    return found


def _links(folder: str) -> dict[str, str]:
    """Device path -> the link's name (escapes such as `\\x20` of udev undone) of a /dev/disk/by-* folder."""
    found: dict[str, str] = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return found
    for name in names:
        target = os.path.realpath(os.path.join(folder, name))
        found[target] = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)
    return found


def removable(source: str, sys_block: str = "/sys/class/block") -> bool:
    """Whether the device is removable: its disk's `removable` flag, or it hangs off a USB bus."""
    if not source.startswith("/dev/"):
        return False
    node = os.path.join(sys_block, os.path.basename(os.path.realpath(source)))
    real = os.path.realpath(node)
    if "/usb" in real:
        return True
    for folder in (real, os.path.dirname(real)):  # a partition's flag is its disk's
        try:
            return Path(folder, "removable").read_text().strip() == "1"
        except OSError:
            continue
    return False


def identify(point: str, *, label: str, fs_type: str, size: int, uuid_: str | None, write: bool) -> str:
    """A volume's identity: its filesystem UUID; else its id file (written now when `write` and it may be:
    never on a read-only volume); else a fingerprint (see `fingerprint`)."""
    if uuid_:
        return f"uuid:{uuid_.lower()}"
    id_file = os.path.join(point, ID_FILE)
    known = _read_id_file(id_file)
    if known is not None:
        return f"file:{known}"
    if write and os.access(point, os.W_OK) and not _read_only(point):
        new = uuid.uuid4()
        try:
            fd = os.open(id_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:  # another process claimed it first: its id holds
            return identify(point, label=label, fs_type=fs_type, size=size, uuid_=None, write=False)
        except OSError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(f"{new}\n")
            return f"file:{new}"
    return f"fingerprint:{fingerprint(point, label=label, fs_type=fs_type, size=size)}"


def _read_id_file(id_file: str) -> uuid.UUID | None:
    """The id in a volume's id file; None when there is none, or what is there is no id (a disk's maker chose
    it: a FIFO that would block, a link elsewhere, a huge file are not read)."""
    try:
        fd = os.open(id_file, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return uuid.UUID(os.read(fd, 64).decode("ascii").strip())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    finally:
        os.close(fd)


def fingerprint(point: str, *, label: str, fs_type: str, size: int) -> str:
    """Label, type and size; and, on a read-only volume (where they cannot change), its root's times."""
    times = ""
    if _read_only(point):
        with suppress(OSError):
            root = os.stat(point)
            times = f"{root.st_mtime_ns}:{root.st_ctime_ns}"
    return hashlib.sha256("\0".join((label, fs_type, str(size), times)).encode()).hexdigest()[:32]


def _read_only(point: str) -> bool:
    try:
        return bool(os.statvfs(point).f_flag & os.ST_RDONLY)
    except OSError:
        return True


_KNOWN: dict[tuple[int, str, str, str], tuple[int | None, str | None, str]] = {}
"""What was last read of each mount (by mount id, device number, mount point and source): the mount's birth (see
`_birth`), its UUID and label, kept while it stays mounted: a blkid that fails under load must not make a mounted
disk another one, nor look unplugged."""
_KNOWN_LOCK = threading.Lock()


def _mount_key(mount: Mount) -> tuple[int, str, str, str]:
    return (mount.mount_id, mount.device, mount.point, mount.source)


STATX_BTIME, STATX_MNT_ID_UNIQUE = 0x800, 0x4000
AT_NO_AUTOMOUNT, AT_STATX_DONT_SYNC = 0x800, 0x4000


@functools.cache
def _statx() -> Any:
    try:
        call = ctypes.CDLL(None, use_errno=True).statx
    except (AttributeError, OSError):  # not glibc 2.28+
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
    call.restype = ctypes.c_int
    return call


def _birth(point: str) -> int | None:
    """What tells the mount at `point` from a later one there that the kernel gave the same mount id, on the same
    device (a disk swapped while nobody looked): the kernel's unique mount id (Linux 6.8+: never reused while it
    runs), else the birth time of the volume's root where its filesystem tells one (ext4's is when it was made);
    None where neither is told (then the mount id, device, point and source are all that tell them apart)."""
    call = _statx()
    if call is None:
        return None
    buf = ctypes.create_string_buffer(256)  # struct statx
    flags = AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC
    if call(-100, os.fsencode(point), flags, STATX_MNT_ID_UNIQUE | STATX_BTIME, buf) != 0:  # -100: AT_FDCWD
        return None
    (mask,) = struct.unpack_from("I", buf, 0)
    if mask & STATX_MNT_ID_UNIQUE:
        return int(struct.unpack_from("Q", buf, 144)[0])  # stx_mnt_id
    if mask & STATX_BTIME:
        seconds, nanoseconds = struct.unpack_from("qI", buf, 80)  # stx_btime
        return seconds * 1_000_000_000 + nanoseconds or None
    return None


def _forget_unmounted(mounts: list[Mount]) -> None:
    """Forget what was read of the mounts that are no longer in the mount table (their device may be another disk
    next time)."""
    now = {_mount_key(m) for m in mounts}
    with _KNOWN_LOCK:
        for key in [k for k in _KNOWN if k not in now]:
            del _KNOWN[key]


def _told(mount: Mount, device: str, facts: DeviceFacts, claim: bool) -> tuple[str | None, str]:
    """The UUID and label of the mount's device: as read now, else (blkid did not answer) as last read while it
    has been mounted (the same mount: its birth unchanged); a first use (`claim`) with neither is refused rather
    than given a made-up identity."""
    key, birth = _mount_key(mount), _birth(mount.point)
    if device not in facts.untold:
        uuid_, label = facts.uuids.get(device), facts.labels.get(device, "")
        with _KNOWN_LOCK:
            _KNOWN[key] = (birth, uuid_, label)
        return uuid_, label
    with _KNOWN_LOCK:
        known = _KNOWN.get(key)
    if known is not None and known[0] == birth:
        return known[1], known[2]
    if claim:
        raise VolumeUnreadable(
            f"the identity of the disk at {mount.point} ({mount.source}) could not be read: blkid failed twice "
            "(a busy machine?); try again in a moment"
        )
    return None, ""


def volume_of(mount: Mount, facts: DeviceFacts, *, claim: bool = False) -> Volume:
    """The Volume of a mount: sizes, identity, whether removable or the system's. `claim`: write the id file
    at its root if it needs one (its first use)."""
    try:
        stats = os.statvfs(mount.point)
        size, free = stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize
    except OSError:
        size = free = 0
    device = os.path.realpath(mount.source) if mount.source.startswith("/dev/") else mount.source
    uuid_, label = _told(mount, device, facts, claim)
    is_removable = removable(mount.source)
    system = not is_removable and (mount.point in SYSTEM_POINTS or mount.fs_type in PSEUDO_FS)
    return Volume(
        id=identify(
            mount.point,
            label=label,
            fs_type=mount.fs_type,
            size=size,
            uuid_=uuid_,
            write=claim and not mount.read_only and not system,
        ),
        label=label,
        fs_type=mount.fs_type,
        mount_point=mount.point,
        source=mount.source,
        size=size,
        free=free,
        removable=is_removable,
        system=system,
        read_only=mount.read_only,
    )


def list_volumes(mountinfo: str = MOUNTINFO) -> list[Volume]:
    """The volumes mounted now (as `mountinfo` lists them), in mount order; a missing file: none."""
    try:
        text = Path(mountinfo).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return []
    table = parse_mountinfo(text)
    _forget_unmounted(table)
    mounts = browsable(table)
    facts = DeviceFacts.read([os.path.realpath(m.source) for m in mounts if m.source.startswith("/dev/")])
    return [volume_of(m, facts) for m in mounts]


def volume_of_mount(path: str, *, claim: bool = False, mountinfo: str | None = None) -> Volume | None:
    """The volume a person would browse that holds `path` (its identity claimed if `claim`: see volume_of); None
    when `path` is on none (a pseudo filesystem, a bind-mounted file)."""
    try:
        text = Path(mountinfo or MOUNTINFO).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None
    table = parse_mountinfo(text)
    _forget_unmounted(table)
    mount = _holding(browsable(table), path)
    if mount is None:
        return None
    devices = [os.path.realpath(mount.source)] if mount.source.startswith("/dev/") else []
    return volume_of(mount, DeviceFacts.read(devices), claim=claim)


class MountWatcher:
    """A thread that calls `changed()` each time the mount table changes (the kernel wakes poll with POLLPRI
    on /proc/self/mountinfo); no busy loop. `close()` stops it within its poll timeout."""

    def __init__(self, changed: Callable[[], None], mountinfo: str = MOUNTINFO) -> None:
        self._changed = changed
        self._file = open(mountinfo, "rb")  # noqa: SIM115 -- held open for the watcher's life
        self._file.read()  # poll reports a change relative to the last read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mount-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._file.fileno(), select.POLLPRI | select.POLLERR)
        try:
            while not self._stop.is_set():
                if not poller.poll(250):
                    continue
                self._file.seek(0)
                self._file.read()
                if not self._stop.is_set():
                    self._changed()
        finally:
            self._file.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@dataclass(frozen=True, slots=True)
class Limits:
    """What a filesystem cannot hold, told before a copy writes to it."""

    name: str
    """What people call the filesystem (FAT32, exFAT)."""
    max_file: int | None
    """The largest file it holds, in bytes (None: no limit worth telling)."""
    dos_names: bool
    """Whether names are DOS-like: no `: ? " * < > | \\`, no trailing dot or space, case folded."""


GIB = 1 << 30
LIMITS = {
    "vfat": Limits("FAT32", 4 * GIB - 1, dos_names=True),
    "msdos": Limits("FAT", 4 * GIB - 1, dos_names=True),
    "exfat": Limits("exFAT", None, dos_names=True),
}
"""The filesystems with limits a copy must know of, by their format (`disk_format`)."""
DOS_FORBIDDEN = frozenset(':?"*<>|\\') | frozenset(chr(c) for c in range(32))


def mount_at(path: str, mountinfo: str | None = None) -> Mount | None:
    """The mount that holds `path` (the nearest folder of it that exists), as mountinfo (this process's mount
    table unless given) tells it."""
    return mounts_holding([path], mountinfo)[0]


def mounts_holding(paths: Sequence[str], mountinfo: str | None = None) -> list[Mount | None]:
    """The mount that holds each of `paths` (see `mount_at`), the mount table read once."""
    try:
        text = Path(mountinfo or MOUNTINFO).read_text(encoding="utf-8", errors="surrogateescape")
        mounts = parse_mountinfo(text)
    except OSError:
        return [None for _ in paths]
    return [_holding(mounts, path) for path in paths]


def mount_points(mountinfo: str | None = None) -> set[str]:
    """Where something is mounted now, as the mount table tells it."""
    try:
        text = Path(mountinfo or MOUNTINFO).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return set()
    return {m.point for m in parse_mountinfo(text)}


def _holding(mounts: list[Mount], path: str) -> Mount | None:
    existing = path
    while not os.path.exists(existing) and existing not in ("/", ""):
        existing = os.path.dirname(existing)
    real = os.path.realpath(existing)
    held = [m for m in mounts if real == m.point or real.startswith(m.point.rstrip("/") + "/")]
    return max(held, key=lambda m: len(m.point), default=None)  # the last mounted over the longest point


def limits_at(path: str, mountinfo: str | None = None) -> Limits | None:
    """The limits of the filesystem that holds `path`, where it has any."""
    mount = mount_at(path, mountinfo)
    return LIMITS.get(disk_format(mount)) if mount is not None else None


def unfit_name(name: str) -> bool:
    """Whether a DOS-like filesystem (FAT, exFAT) cannot hold this name as it is."""
    return name[-1:] in (".", " ") and name not in (".", "..") or any(c in DOS_FORBIDDEN for c in name)


def fitted_name(name: str) -> str:
    """The name a DOS-like filesystem can hold: each forbidden character an underscore, no trailing dot or space."""
    fitted = "".join("_" if c in DOS_FORBIDDEN else c for c in name).rstrip(". ")
    return fitted or "_"


def find(volumes: list[Volume], name: str) -> Volume:
    """The volume `name` names: its mount point, label, device name or id; VolumeNotFound says which there are."""
    named = [
        v for v in volumes if name in (v.mount_point, v.label, v.id, v.source, os.path.basename(v.source))
    ]
    if len(named) == 1:
        return named[0]
    if named:  # two disks labelled alike: the wrong one is never unmounted
        points = ", ".join(v.mount_point for v in named)
        raise VolumeNotFound(
            f"{len(named)} volumes are named {name!r} ({points}); name one by its mount point"
        )
    known = ", ".join(v.mount_point for v in volumes) or "none"
    raise VolumeNotFound(
        f"no mounted volume is named {name!r}; name one by mount point or label (mounted: {known})"
    )


def refuse_if_used(volume: Volume, jobs: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Raise CannotEject naming the first of `jobs` (what it is, the paths it uses) that uses the volume."""
    inside = volume.mount_point.rstrip("/") + "/"
    for what, paths in jobs:
        if any(p == volume.mount_point or p.startswith(inside) for p in paths):
            raise CannotEject(
                f"{volume.mount_point} is in use by a job ({what}); let it finish, or pause or cancel it "
                "(`sd job list`), then eject"
            )


def eject(volume: Volume) -> None:
    """Unmount a volume (udisksctl where present, which also powers a USB disk off; else umount). Raises
    CannotEject with the reason (files open on it, not allowed) and leaves it mounted."""
    if volume.system:
        raise CannotEject(f"{volume.mount_point} is a system volume: it is not ejected")
    if shutil.which("udisksctl") and volume.source.startswith("/dev/"):
        command = ["udisksctl", "unmount", "--no-user-interaction", "-b", volume.source]
    else:
        command = ["umount", "--", volume.mount_point]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[:300]
        if "busy" in said.lower():
            raise CannotEject(
                f"{volume.mount_point} is in use: files are open on it (close them; `fuser -vm` lists who has them)"
            )
        raise CannotEject(f"{volume.mount_point} was not unmounted: {said or f'{command[0]} failed'}")


class VolumeNotFound(SdError):
    """No mounted volume has that name."""


class CannotEject(SdError):
    """The volume stays mounted; the message says why."""


class VolumeUnreadable(SdError):
    """A disk's identity could not be read (blkid failed); nothing was recorded of it."""
