"""Content identities read in child processes: in the content phase one per core (up to 4), each reading and hashing
its share of one batch while the indexer writes the last; in a first load, by the walker as it lists each folder.

Threads do not help here: the files are small, so hashing is mostly Python work holding the GIL, and the
writer thread then waits for it on every SQLite step.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator

import msgpack

from sdcore.fs import held
from sdcore.index import cas
from sdcore.index.kinds import MAGIC_BYTES, kind_from_magic
from sdcore.index.walker import EXTENSION, INODE, KIND, MTIME, NAME, OBJECT_KIND, SIZE, Found
from sdcore.sdpath import from_db

Request = tuple[int, str, str]  # (entry id, absolute path, extension)
Identified = tuple[int, str | None, str | None, int, str | None]  # (entry id, cas_id, object kind, size, error)


def identify_all(files: list[Request]) -> list[Identified]:
    results: list[Identified] = []
    for entry_id, path, extension in files:
        try:
            cas_id, head, size = cas.identify(path)
        except OSError as exc:
            results.append((entry_id, None, None, 0, exc.strerror or str(exc)))
            continue
        results.append((entry_id, cas_id, kind_from_magic(head, extension), size, None))
    return results


_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # never a symlink, never waits on a FIFO


def identify_listing(dir_fd: int, found: list[Found], until: float) -> list[Found]:
    """A folder's listing with each entry's cas_id appended: a regular file's is read by name in the open folder
    `dir_fd` when it is still the file listed (same inode, size and time), and its object kind is then the one its
    first bytes prove; None for anything else (a file changed, gone or unreadable is left to the content phase), and
    for every file once the clock (time.monotonic) passes `until`.

    One open per file, beside the listing: no path is built or walked again, nothing is read back from the database.
    """
    out: list[Found] = []
    append, open_, fstat, now, sampled = out.append, os.open, os.fstat, time.monotonic, cas.sampled
    for f in found:
        if f[KIND] != "file" or not f[SIZE] or now() > until:
            append((*f, None))
            continue
        name = f[NAME]
        try:
            fd = open_(name if name.isascii() else from_db(name), _OPEN_FILE, dir_fd=dir_fd)
        except OSError:
            append((*f, None))
            continue
        st = None
        try:
            st = fstat(fd)
            if st.st_ino != f[INODE] or st.st_size != f[SIZE] or st.st_mtime != f[MTIME] or not stat.S_ISREG(st.st_mode):
                append((*f, None))
                continue
            cas_id, head = sampled(fd, st.st_size)
        except OSError:
            append((*f, None))
            continue
        finally:
            held.close(fd, st)
        kind = kind_from_magic(head[:MAGIC_BYTES], from_db(f[EXTENSION]))
        append((*f, cas_id) if kind == f[OBJECT_KIND] else (*f[:OBJECT_KIND], kind, *f[OBJECT_KIND + 1 :], cas_id))
    return out


class InlineHasher:
    """The same, in this process (when a child cannot be started)."""

    def __init__(self) -> None:
        self._files: list[Request] = []

    def submit(self, files: list[Request]) -> None:
        self._files = files

    def result(self) -> list[Identified]:
        return identify_all(self._files)

    def close(self) -> None:
        pass


class ProcessHasher:
    """`submit` a batch, then `result` it; the child works on it in between."""

    def __init__(self) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "sdcore.index.hasher"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            process_group=0,  # a Ctrl-C at the terminal pauses the job; the child is stopped by us, quietly
        )
        assert self._child.stdin is not None and self._child.stdout is not None
        self._replies = _frames(self._child.stdout.fileno())

    def submit(self, files: list[Request]) -> None:
        assert self._child.stdin is not None
        self._child.stdin.write(msgpack.packb(files, unicode_errors="surrogateescape"))

    def result(self) -> list[Identified]:
        try:
            return next(self._replies)  # type: ignore[no-any-return]
        except StopIteration:
            raise OSError(f"the hashing process stopped with status {self._child.wait()}") from None

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()
        for pipe in (self._child.stdin, self._child.stdout):
            if pipe is not None:
                pipe.close()


class SplitHasher:
    """Hashers in several children, each given its share of every batch: hashing is the content phase's
    bottleneck, and one child keeps one core busy."""

    def __init__(self, hashers: list[ProcessHasher]) -> None:
        self._hashers = hashers

    def submit(self, files: list[Request]) -> None:
        share = -(-len(files) // len(self._hashers))
        for i, hasher in enumerate(self._hashers):
            hasher.submit(files[i * share : (i + 1) * share])

    def result(self) -> list[Identified]:
        return [identified for hasher in self._hashers for identified in hasher.result()]

    def close(self) -> None:
        for hasher in self._hashers:
            hasher.close()


def start_hasher(children: int = min(os.cpu_count() or 1, 4)) -> SplitHasher | InlineHasher:
    hashers: list[ProcessHasher] = []
    try:
        for _ in range(max(children, 1)):
            hashers.append(ProcessHasher())
    except OSError:
        if not hashers:
            return InlineHasher()
    return SplitHasher(hashers)


def _frames(fd: int) -> Iterator[list]:
    """msgpack objects as they arrive on a pipe (never waiting for more bytes than were sent)."""
    unpacker = msgpack.Unpacker(use_list=False, unicode_errors="surrogateescape")
    while True:
        yield from unpacker
        data = os.read(fd, 1 << 20)
        if not data:
            return
        unpacker.feed(data)


def _child_main() -> None:
    out = sys.stdout.buffer
    try:
        for files in _frames(sys.stdin.fileno()):
            out.write(msgpack.packb(identify_all(files), unicode_errors="surrogateescape"))
            out.flush()
    except (BrokenPipeError, KeyboardInterrupt):  # the indexer stopped (or was killed): nothing to say
        os._exit(1)


if __name__ == "__main__":
    _child_main()
