"""The data dir: where it is, and owner-only: it and everything in it are 0700 (folders) and 0600 (files), whatever
the umask.

A person's index, tags, notes, keys and received files are theirs alone. Everything sdcore makes in the
data dir is created owner-only (a mode given at creation, which a umask can only narrow), and a data dir
an older version made readable by others is repaired when it is opened, with one warning line.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

from sdcore.sdpath import display

OTHERS = 0o077  # the group and other permission bits: never set on anything in the data dir
CHECKED_DEPTH = 3  # data dir / libraries / NAME.sdlibrary / database.db: checked at every open
SHOWN = 4  # paths named in the warning before "and N more"
# Received files keep the sender's modes (masked to 0o777); their owner-only folder keeps others out.
KEEP_MODES_INSIDE = ("spacedrop",)


def default_data_dir() -> Path:
    """The data dir when none is given: $SD_DATA_DIR, else sdtui in the XDG data dir."""
    env = os.environ.get("SD_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(xdg) / "sdtui"


def make_private_dir(path: Path) -> None:
    """Make a folder owner-only (0700) if it is missing; folders above it keep the usual modes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass


def create_private(path: Path) -> None:
    """Create an empty owner-only file if it is missing (SQLite gives -wal and -shm the database's mode)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, owner-only (0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def check_data_dir(data_dir: Path) -> None:
    """Repair a data dir that other users could read, saying so in one line on stderr."""
    fixed, failed = repair(data_dir)
    if not fixed and not failed:
        return
    parts = []
    if fixed:
        parts.append(f"other local users could read your sdtui data; made owner-only: {_listed(fixed)}")
    if failed:
        parts.append(
            f"could not make owner-only: {_listed(failed)}; run `chmod -R go-rwx {display(str(data_dir))}` as their owner"
        )
    # Said at once on stderr: it runs before any front end draws, and a privacy leak must not go unseen.
    print("warning: " + "; ".join(parts), file=sys.stderr)


def repair(data_dir: Path) -> tuple[list[str], list[str]]:
    """Take the group and other bits off the data dir and what is in it: (fixed, could not fix).

    The data dir and the three levels below it are checked at every open (a few dozen stats); the whole
    tree (thumbnails and all) only when something there was fixed, that is once, for a data dir made
    before everything was created owner-only. Symlinks are neither followed nor changed.
    """
    fixed: list[str] = []
    failed: list[str] = []
    root = str(data_dir)
    _fix(root, root, fixed, failed, follow=True)
    for path in _below(root, CHECKED_DEPTH):
        _fix(root, path, fixed, failed)
    if fixed:
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            for name in dirs + sorted(files):
                _fix(root, os.path.join(directory, name), fixed, failed)
            dirs[:] = [d for d in dirs if not _keeps_modes(root, os.path.join(directory, d))]
    return list(dict.fromkeys(fixed)), list(dict.fromkeys(failed))


def _below(root: str, depth: int) -> list[str]:
    """Paths under `root` down to `depth` levels (not through symlinks)."""
    found: list[str] = []
    level = [root]
    for _ in range(depth):
        nxt: list[str] = []
        for directory in level:
            try:
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: e.name)  # the warning names them in a stable order
                for entry in entries:
                    found.append(entry.path)
                    if entry.is_dir(follow_symlinks=False) and not _keeps_modes(root, entry.path):
                        nxt.append(entry.path)
            except OSError:
                continue
        level = nxt
    return found


def _keeps_modes(root: str, path: str) -> bool:
    return os.path.relpath(path, root) in KEEP_MODES_INSIDE


def _fix(root: str, path: str, fixed: list[str], failed: list[str], follow: bool = False) -> None:
    look = os.stat if follow else os.lstat
    try:
        st = look(path)
    except OSError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode) or not mode & OTHERS:
        return
    name = "the data dir " + display(root) if path == root else display(os.path.relpath(path, root))
    try:
        os.chmod(path, mode & ~OTHERS)
        changed = not stat.S_IMODE(look(path).st_mode) & OTHERS  # some filesystems ignore chmod
    except OSError:
        changed = False
    if changed:
        fixed.append(f"{name} ({mode:04o})")
    else:
        failed.append(name)


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
