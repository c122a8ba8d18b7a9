"""The freedesktop.org trash: put a file in it, list what it holds, restore it, empty it."""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote_from_bytes, unquote_to_bytes

from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.fs.noreplace import rename_noreplace
from sdcore.ops.names import numbered
from sdcore.sdpath import display

INFO_SUFFIX = ".trashinfo"
_DIR = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
# Bytes kept as they are in a .trashinfo Path; every other byte is %-escaped (RFC 2396, as the spec asks).
_SAFE = "/-_.!~*'()"
KeepOut = Callable[[int, str], None]
"""Called with a trash folder's descriptor and path before anything is moved in or out: raises to refuse it (a
peer's request refuses one the peer linked into this device's data dir)."""


class TrashError(SdError):
    """The trash cannot take or give back a file; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class TrashItem:
    """One trashed file: where it lies in the trash and where it came from."""

    trash_dir: str
    name: str
    original_path: str
    deleted: float
    kind: str
    size: int

    @property
    def path(self) -> str:
        """The trashed file itself (in `files/`)."""
        return os.path.join(self.trash_dir, "files", self.name)

    @property
    def info_path(self) -> str:
        return os.path.join(self.trash_dir, "info", self.name + INFO_SUFFIX)


def home_trash() -> str:
    """`$XDG_DATA_HOME/Trash` (default ~/.local/share/Trash)."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(data_home, "Trash")


def mount_point(path: str) -> str:
    """The top directory of the filesystem holding `path` (the highest ancestor on the same device)."""
    path = os.path.abspath(path)
    dev = os.lstat(path).st_dev
    while path != "/":
        parent = os.path.dirname(path)
        if os.lstat(parent).st_dev != dev:
            return path
        path = parent
    return "/"


def trash_dir_for(path: str, dev: int | None = None) -> tuple[str, str | None]:
    """(the trash that takes `path`, its topdir or None for the home trash); made if missing.

    `dev` is the device of `path`'s folder when the caller holds that folder open.
    """
    home = home_trash()
    if dev is None:
        dev = os.lstat(os.path.dirname(os.path.abspath(path)) or "/").st_dev
    os.makedirs(home, exist_ok=True)
    if os.stat(home).st_dev == dev:
        return home, None
    top = mount_point(os.path.dirname(os.path.abspath(path)))
    uid = str(os.getuid())
    admin = os.path.join(top, ".Trash")
    try:
        st = os.lstat(admin)
        if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:  # the spec: sticky, not a symlink
            own = os.path.join(admin, uid)
            os.makedirs(own, mode=0o700, exist_ok=True)
            return own, top
    except OSError:
        pass
    own = os.path.join(top, f".Trash-{uid}")
    try:
        os.makedirs(own, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise TrashError(
            f"{display(path)}: cannot make a trash on its filesystem ({display(own)}: {exc.strerror}); "
            "delete it permanently instead (`sd rm --permanent`)"
        ) from None
    return own, top


def trash(path: str) -> str:
    """Move `path` to the trash of its filesystem; returns where it now lies."""
    path = os.path.abspath(path)
    head, name = os.path.split(path)
    fd = os.open(head or "/", _DIR)
    try:
        return trash_at(fd, name, path)
    finally:
        os.close(fd)


def trash_at(dir_fd: int, name: str, path: str, keep_out: KeepOut | None = None) -> str:
    """Move `name` of the open folder `dir_fd` (known to people as `path`) to the trash of its filesystem.

    The move is made from that descriptor into the trash's `files/` opened without following a
    symlink, so a name swapped meanwhile, or a trash a peer planted at the top of its share, leads nowhere else.
    """
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        raise NotFound(f"{display(path)}: no such file or directory") from None
    trash_dir, top = trash_dir_for(path, os.fstat(dir_fd).st_dev)
    if (trash_dir + "/").startswith(path.rstrip("/") + "/"):
        raise TrashError(f"{display(path)} holds the trash itself; it cannot go into it")
    files = _trash_subdir(trash_dir, "files", keep_out)
    try:
        info = _trash_subdir(trash_dir, "info", keep_out)
    except BaseException:
        os.close(files)
        raise
    try:
        recorded = os.path.relpath(path, top) if top is not None else path
        body = (
            "[Trash Info]\n"
            f"Path={quote_from_bytes(os.fsencode(recorded), safe=_SAFE)}\n"
            f"DeletionDate={time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
        ).encode("ascii")
        kept, fd = _reserve_info(info, files, name, body.splitlines()[1])
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.rename(name, kept, src_dir_fd=dir_fd, dst_dir_fd=files)
        except OSError as exc:
            _unlink_quietly(kept + INFO_SUFFIX, info)
            raise TrashError(f"{display(path)}: cannot move it to the trash ({exc.strerror})") from None
    finally:
        os.close(files)
        os.close(info)
    return os.path.join(trash_dir, "files", kept)


def _trash_subdir(trash_dir: str, sub: str, keep_out: KeepOut | None = None) -> int:
    """`files/` or `info/` of a trash, made if missing, opened without following a symlink in its place
    (nor in the trash's own, unless it is the home trash, which its owner may have made a link)."""
    follow = 0 if os.path.abspath(trash_dir) == os.path.abspath(home_trash()) else os.O_NOFOLLOW
    top = os.open(trash_dir, _DIR | follow)
    try:
        if keep_out is not None:
            keep_out(top, trash_dir)
        try:
            os.mkdir(sub, 0o700, dir_fd=top)
        except FileExistsError:
            pass
        return os.open(sub, _DIR | os.O_NOFOLLOW, dir_fd=top)
    finally:
        os.close(top)


def _reserve_info(info_dir: int, files_dir: int, base: str, path_line: bytes) -> tuple[str, int]:
    """Create the .trashinfo exclusively (the spec's atomic claim of a name); returns (name, fd).

    An info file of this same path whose file never arrived (a trash cut off by a kill) is taken over.
    """
    for name in itertools.islice(numbered(base), 100_000):
        try:
            return name, os.open(
                name + INFO_SUFFIX, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=info_dir
            )
        except FileExistsError:
            if _left_by_a_cut_off_trash(info_dir, files_dir, name, path_line):
                return name, os.open(name + INFO_SUFFIX, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW, dir_fd=info_dir)
    raise TrashError(f"too many files named {display(base)} in the trash; empty it (`sd trash empty`)")


def _left_by_a_cut_off_trash(info_dir: int, files_dir: int, name: str, path_line: bytes) -> bool:
    try:
        os.lstat(name, dir_fd=files_dir)
        return False
    except FileNotFoundError:
        pass
    try:
        fd = os.open(name + INFO_SUFFIX, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=info_dir)
        with os.fdopen(fd, "rb") as f:
            return path_line in f.read().splitlines()
    except OSError:
        return False


def trashed_since(path: str, since: float) -> str | None:
    """Where `path` lies in the trash if it was put there at `since` or later (by a run a kill then cut off)."""
    path = os.path.abspath(path)
    try:
        trash_dir, top = trash_dir_for(path)
    except (OSError, SdError):
        return None
    for item in list_trash([(trash_dir, top)]):
        if item.original_path == path and item.deleted >= since - 1:  # DeletionDate counts whole seconds
            return item.path
    return None


def trash_dirs() -> list[tuple[str, str | None]]:
    """Every trash of this user that exists: the home one, then those at the top of each mounted filesystem."""
    found: list[tuple[str, str | None]] = []
    if os.path.isdir(home_trash()):
        found.append((home_trash(), None))
    uid = str(os.getuid())
    for top in _mount_points():
        for candidate in (os.path.join(top, ".Trash", uid), os.path.join(top, f".Trash-{uid}")):
            if os.path.isdir(os.path.join(candidate, "info")) and all(candidate != d for d, _ in found):
                found.append((candidate, top))
    return found


def _mount_points() -> list[str]:
    try:
        with open("/proc/self/mounts", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return ["/"]
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 1:
            # /proc/mounts escapes space, tab, newline and backslash as octal
            raw = fields[1]
            for code in (b"\\040", b"\\011", b"\\012", b"\\134"):
                raw = raw.replace(code, bytes([int(code[1:], 8)]))
            points.append(os.fsdecode(raw))
    return points


def list_trash(dirs: list[tuple[str, str | None]] | None = None) -> list[TrashItem]:
    """Everything in the trash, most recently deleted first."""
    items = []
    for trash_dir, top in dirs if dirs is not None else trash_dirs():
        info_dir = os.path.join(trash_dir, "info")
        try:
            names = os.listdir(info_dir)
        except OSError:
            continue
        for info_name in names:
            if not info_name.endswith(INFO_SUFFIX):
                continue
            item = _read_item(trash_dir, top, info_name[: -len(INFO_SUFFIX)])
            if item is not None:
                items.append(item)
    items.sort(key=lambda i: i.deleted, reverse=True)
    return items


def _read_item(trash_dir: str, top: str | None, name: str) -> TrashItem | None:
    try:
        with open(os.path.join(trash_dir, "info", name + INFO_SUFFIX), "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        st = os.lstat(os.path.join(trash_dir, "files", name))
    except OSError:
        return None  # an info file whose file is gone, or unreadable: not an item
    fields = dict(line.split("=", 1) for line in lines if "=" in line)
    if "Path" not in fields:
        return None
    original = os.fsdecode(unquote_to_bytes(fields["Path"].strip()))
    if top is not None:
        # a drive's trash is writable by whoever may write the drive (a paired device it is shared
        # with): its items come from the drive, as the spec says, never from elsewhere
        inside = os.path.normpath(os.path.join(top, original))
        if original.startswith("/") or not inside.startswith(top.rstrip("/") + "/"):
            return None
        original = inside
    elif not original.startswith("/"):
        original = "/" + original
    try:
        deleted = datetime.strptime(fields.get("DeletionDate", "").strip(), "%Y-%m-%dT%H:%M:%S").timestamp()
    except ValueError:
        deleted = st.st_mtime
    from sdcore.fs.base import kind_of_mode

    return TrashItem(trash_dir, name, original, deleted, kind_of_mode(st.st_mode), st.st_size)


def find(key: str, items: list[TrashItem] | None = None) -> TrashItem:
    """A trashed file by its original path (the latest deleted), its path in the trash, or its trashed name."""
    items = list_trash() if items is None else items
    absolute = os.path.abspath(os.path.expanduser(key))  # relative to where this process runs
    for item in items:
        if absolute in (item.original_path, item.path):
            return item
    for item in items:
        if key == item.name:
            return item
    raise NotFound(f"nothing in the trash matches {display(key)}; `sd trash list` shows what it holds")


def restore(item: TrashItem, to: str | None = None) -> str:
    """Put a trashed file back where it was (or at `to`); refuses to replace anything."""
    target = os.path.abspath(to) if to else item.original_path
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd = os.open(os.path.dirname(target), _DIR)
    try:
        return restore_at(item, fd, os.path.basename(target), target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(item.path, target)  # the original place is now on another filesystem
        _unlink_quietly(item.info_path)
        return target
    finally:
        os.close(fd)


def restore_at(item: TrashItem, dir_fd: int, name: str, target: str, keep_out: KeepOut | None = None) -> str:
    """Put a trashed file back as `name` in the open folder `dir_fd` (known to people as `target`).

    Raises OSError(EXDEV) when that folder is on another filesystem than the trash.
    """
    files = _trash_subdir(item.trash_dir, "files", keep_out)
    try:
        rename_noreplace(item.name, name, src_dir_fd=files, dst_dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise AlreadyExists(
                f"{display(target)} exists already; move it away or restore to another place (`--to PATH`)"
            ) from None
        if exc.errno == errno.EXDEV:
            raise
        raise TrashError(f"cannot restore {display(target)}: {exc.strerror}") from None
    finally:
        os.close(files)
    _unlink_quietly(item.info_path)
    return target


def empty(items: list[TrashItem] | None = None, older_than: float | None = None) -> tuple[int, int]:
    """Delete trashed files for good (all, the given ones, or those deleted more than `older_than` s ago).

    Returns (files removed, bytes freed).
    """
    everything = items is None
    items = list_trash() if items is None else items
    if older_than is not None:
        cutoff = time.time() - older_than
        items = [i for i in items if i.deleted < cutoff]
    count = freed = 0
    for item in items:
        freed += _tree_size(item.path)
        _remove(item.path)
        _unlink_quietly(item.info_path)
        count += 1
    if everything and older_than is None:
        for trash_dir, _ in trash_dirs():  # leftovers: files without info, info without files
            for sub in ("files", "info"):
                for name in _listdir(os.path.join(trash_dir, sub)):
                    _remove(os.path.join(trash_dir, sub, name))
            _unlink_quietly(os.path.join(trash_dir, "directorysizes"))
    return count, freed


def _tree_size(path: str) -> int:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, _ in os.walk(path):  # a read-only directory inside must become writable to empty it
            for d in dirs:
                p = os.path.join(root, d)
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
        os.chmod(path, 0o700)
        shutil.rmtree(path)
    else:
        _unlink_quietly(path)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _unlink_quietly(path: str, dir_fd: int | None = None) -> None:
    try:
        os.unlink(path, dir_fd=dir_fd)
    except OSError:
        pass
