"""cas_id: Spacedrive's sampled content id, checked against a reference written from issue 2's text."""

from __future__ import annotations

import os
import random
from pathlib import Path

import blake3
import pytest

from sdcore.index import cas


def reference_cas_id(data: bytes) -> str | None:
    """Issue 2, literally: BLAKE3(size as u64 LE ‖ whole file if size <= 102,400 else header 8 KiB ‖
    4 samples of 10 KiB at 8192 + k * ((size - 16384) // 4) ‖ last 8 KiB), first 16 hex digits; empty: none."""
    size = len(data)
    if size == 0:
        return None
    parts = [size.to_bytes(8, "little")]
    if size <= 102_400:
        parts.append(data)
    else:
        parts.append(data[:8192])
        for k in range(4):
            start = 8192 + k * ((size - 16384) // 4)
            parts.append(data[start : start + 10240])
        parts.append(data[size - 8192 :])
    return blake3.blake3(b"".join(parts)).hexdigest()[:16]


SIZES = [1, 2, 100, 8192, 16384, 102_399, 102_400, 102_401, 102_402, 116_000, 1_000_003, 5 * 1024 * 1024 + 7]


@pytest.mark.parametrize("size", SIZES)
def test_cas_id_matches_the_reference_algorithm(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / f"f{size}"
    path.write_bytes(data)
    expected = reference_cas_id(data)
    assert cas.cas_id(str(path)) == expected
    assert len(expected) == 16 and int(expected, 16) >= 0  # type: ignore[arg-type]
    cas_id, head, got_size = cas.identify(str(path))
    assert (cas_id, head, got_size) == (expected, data[:16], size)


def test_an_empty_file_has_no_cas_id(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert cas.cas_id(str(tmp_path / "empty")) is None


def test_the_size_is_part_of_the_id_even_for_small_files(tmp_path: Path) -> None:
    # Without the size prefix these two would be hashed from the same bytes at different lengths only.
    (tmp_path / "a").write_bytes(b"x")
    assert cas.cas_id(str(tmp_path / "a")) != blake3.blake3(b"x").hexdigest()[:16]
    assert cas.cas_id(str(tmp_path / "a")) == blake3.blake3((1).to_bytes(8, "little") + b"x").hexdigest()[:16]


def test_at_the_threshold_every_byte_counts_and_above_it_only_samples_do(tmp_path: Path) -> None:
    base = random.Random(1).randbytes(102_400)
    changed = bytearray(base)
    changed[50_000] ^= 1  # in the middle: covered while the file is hashed whole
    (tmp_path / "a").write_bytes(base)
    (tmp_path / "b").write_bytes(bytes(changed))
    assert cas.cas_id(str(tmp_path / "a")) != cas.cas_id(str(tmp_path / "b"))

    big = bytearray(random.Random(2).randbytes(102_401))
    (tmp_path / "c").write_bytes(big)
    # a byte between the header (8 KiB) and the first sample's end is covered; pick one in a gap:
    step = (len(big) - 16384) // 4
    gap = 8192 + 10240 + (step - 10240) // 2  # between sample 0 and sample 1
    assert step > 10240
    big[gap] ^= 1
    (tmp_path / "d").write_bytes(big)
    assert cas.cas_id(str(tmp_path / "c")) == cas.cas_id(str(tmp_path / "d"))


def test_identify_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError):
        cas.identify(str(fifo))  # would hang forever if it opened the FIFO for reading in blocking mode


def test_identify_never_follows_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"data")
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(OSError):
        cas.identify(str(tmp_path / "link"))


def test_full_hash_is_blake3_of_the_whole_file(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(3 * 1024 * 1024 + 5)
    (tmp_path / "f").write_bytes(data)
    assert cas.full_hash(str(tmp_path / "f")) == blake3.blake3(data).hexdigest()
