"""Content identity: Spacedrive's sampled cas_id, and the full-file BLAKE3 that proves identity."""

from __future__ import annotations

import os
import stat
import threading

import blake3

from sdcore.fs import held

MINIMUM_FILE_SIZE = 100 * 1024  # files up to this size are hashed whole
SAMPLE_COUNT = 4
SAMPLE_SIZE = 10 * 1024
HEADER_OR_FOOTER_SIZE = 8 * 1024
FULL_HASH_CHUNK = 1 << 20
ID_BYTES = 8  # a cas_id is the first 8 bytes of the BLAKE3 output, as 16 hex digits


def cas_id_of_fd(fd: int, size: int) -> str | None:
    """The cas_id of an open file of `size` bytes; None for an empty file.

    BLAKE3 over the size as 8 little-endian bytes, then the whole file when it is at most
    100 KiB, else an 8 KiB header, four 10 KiB samples and the last 8 KiB; the first 16 hex digits.
    """
    return sampled(fd, size)[0]


def sampled(fd: int, size: int) -> tuple[str | None, bytes]:
    """(cas_id, the first bytes read) of an open file of `size` bytes."""
    if size == 0:
        return None, b""
    if size <= MINIMUM_FILE_SIZE:  # most files: one read, hashed in one call
        head = os.pread(fd, size, 0)
        return blake3.blake3(size.to_bytes(8, "little") + head).hexdigest(ID_BYTES), head
    hasher = blake3.blake3(size.to_bytes(8, "little"))
    head = os.pread(fd, HEADER_OR_FOOTER_SIZE, 0)
    hasher.update(head)
    step = (size - 2 * HEADER_OR_FOOTER_SIZE) // SAMPLE_COUNT
    for k in range(SAMPLE_COUNT):
        hasher.update(os.pread(fd, SAMPLE_SIZE, HEADER_OR_FOOTER_SIZE + k * step))
    hasher.update(os.pread(fd, HEADER_OR_FOOTER_SIZE, size - HEADER_OR_FOOTER_SIZE))
    return hasher.hexdigest(ID_BYTES), head


def cas_id(path: str) -> str | None:
    """The cas_id of the file at `path` (never follows a final symlink)."""
    return identify(path)[0]


def identify(path: str) -> tuple[str | None, bytes, int]:
    """(cas_id, first 16 bytes, size) of a regular file, opened once; never opens a FIFO or device."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    st = None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(0, "not a regular file", path)
        cas_id, head = sampled(fd, st.st_size)
        return cas_id, head[:16], st.st_size
    finally:
        held.close(fd, st)


def full_hash(path: str | int, stop: threading.Event | None = None) -> str:
    """BLAKE3 of the whole file (a path, or an open descriptor the caller closes) as hex (multithreaded
    for large files); InterruptedError as soon as `stop` is set."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC) if isinstance(path, str) else path
    try:
        while chunk := os.read(fd, FULL_HASH_CHUNK):
            if stop is not None and stop.is_set():
                raise InterruptedError("the hash was stopped: its asker went away")
            hasher.update(chunk)
    finally:
        if isinstance(path, str):
            held.close(fd)
    return hasher.hexdigest()
