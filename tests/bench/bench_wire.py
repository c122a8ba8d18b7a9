"""Benchmark of a listing's batch on the core API's wire: `python tests/bench/bench_wire.py [--counts 10000 100000]`.

Encode and decode times of N `Entry` records of one directory (a listing's batch: {"id": .., "more": [...]})
in three formats, side by side: one ext per record (what a message held before batches had a format), rows of
fields (a record's values as a list, one constructor call per row), and columns (now: the class once, a column
per field, a column of one value sent once, records built without a frozen dataclass's __init__).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgpack

from sdcore.api import wire
from sdcore.api.records import Entry
from sdcore.sdpath import SdPath

ROWS = 5


def listing(count: int) -> list[Entry]:
    here = SdPath(uuid.uuid4(), "/home/me/big")
    return [Entry(here, f"f{i:06d}.txt", "file", i * 7, 1.7e9 + i, 1000 + i, 0o100644) for i in range(count)]


def by_record(entries: list[Entry]) -> tuple[Callable[[], bytes], Callable[[bytes], Any]]:
    return lambda: wire._pack({"id": 3, "more": entries}), wire.decode


def by_rows(entries: list[Entry]) -> tuple[Callable[[], bytes], Callable[[bytes], Any]]:
    fields = wire._fields[Entry]

    def encode() -> bytes:
        rows = [[getattr(e, f) for f in fields] for e in entries]
        return wire._pack({"id": 3, "more": msgpack.ExtType(ROWS, wire._pack(["Entry", rows]))})

    def ext(code: int, data: bytes) -> Any:
        if code != ROWS:
            return wire._ext(code, data)
        name, rows = wire._unpack(data)
        return [wire._classes[name](*row) for row in rows]

    return encode, lambda data: msgpack.unpackb(data, ext_hook=ext, raw=False)


def by_columns(entries: list[Entry]) -> tuple[Callable[[], bytes], Callable[[bytes], Any]]:
    return lambda: wire.encode({"id": 3, "more": entries}), wire.decode


def best(run: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    wire._load_known("")  # the first message's imports are start-up, not decoding
    formats = {"one ext per record": by_record, "rows of fields": by_rows, "columns": by_columns}
    print(f"{'entries':>8} {'format':20} {'encode':>9} {'decode':>9} {'bytes':>10} {'decode vs one ext each':>24}")
    for count in args.counts:
        entries = listing(count)
        first = 0.0
        for name, format_of in formats.items():
            encode, decode = format_of(entries)
            encoding, body = best(encode)
            decoding, message = best(lambda: decode(body))  # noqa: B023
            assert message["more"] == entries, name
            first = first or decoding
            print(f"{count:8} {name:20} {encoding * 1000:7.1f}ms {decoding * 1000:7.1f}ms {len(body):10}"
                  f" {first / decoding:23.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
