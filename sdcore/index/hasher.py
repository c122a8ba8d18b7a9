"""The content phase's hashing, in child processes (one per core, up to 4): they read and hash one batch while
the indexer writes the last.

Threads do not help here: the files are small, so hashing is mostly Python work holding the GIL, and the
writer thread then waits for it on every SQLite step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import msgpack

from sdcore.index import cas
from sdcore.index.kinds import kind_from_magic

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
