"""Benchmark: what signing the operation log costs (issue 16's budget: 10,000 tag ops reach a device within 10 s).

    python tests/bench/bench_signed_ops.py [--ops 10000]

Side by side in one run: device A tags OPS targets (one op each, in batches of 1,000) unsigned (a library opened
without a key) and signed; device B takes A's signed ops in batches of 2,000 as a pull does: relayed by a third
device (each signature verified), from A itself (its login proved it: nothing to verify), and without any check
(`apply`, as before signing). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sdcore.device import KEY_FILE, load_or_create  # noqa: E402
from sdcore.events import EventBus  # noqa: E402
from sdcore.library.context import LibraryContext  # noqa: E402
from sdcore.library.library import Library, create_folder  # noqa: E402
from sdcore.sync import oplog  # noqa: E402

BATCH = 1000
PULL = 2000


LIBRARY = uuid.uuid4()
"""One library on every device."""


def library(work: Path, name: str, signed: bool) -> Library:
    device = load_or_create(work / name)
    context = LibraryContext.this_device_only(device.id)
    key_file = work / name / KEY_FILE if signed else None
    context = LibraryContext(device.id, EventBus(), context.fs_for, name, key_file)
    return Library(create_folder(work / name / "libraries", "Bench", LIBRARY), context)


def tag_ops(lib: Library, count: int) -> float:
    started = time.perf_counter()
    with lib.write() as db:
        uid = lib.sync.new_tag(db, "bench")
    for start in range(0, count, BATCH):
        with lib.write() as db:
            lib.sync.tag(db, uid, [oplog.entry_target(lib.sync.device, n) for n in range(start + 1, start + BATCH + 1)])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_signed_") as tmp:
        work = Path(tmp)
        unsigned_a, a = library(work, "a0", False), library(work, "a", True)
        made_unsigned, made_signed = tag_ops(unsigned_a, args.ops), tag_ops(a, args.ops)
        ops = a.sync.ops_since({}, args.ops + 10)
        keys = a.sync.keys_of({a.sync.device})
        b, direct_b, plain_b = library(work, "b", True), library(work, "b1", True), library(work, "b0", True)
        relayer = str(uuid.uuid4())
        started = time.perf_counter()
        for start in range(0, len(ops), PULL):
            b.sync.receive(ops[start : start + PULL], relayer, keys)
        received = time.perf_counter() - started
        started = time.perf_counter()
        for start in range(0, len(ops), PULL):
            direct_b.sync.receive(ops[start : start + PULL], a.sync.device, keys)
        direct = time.perf_counter() - started
        started = time.perf_counter()
        for start in range(0, len(ops), PULL):
            plain_b.sync.apply(ops[start : start + PULL])
        applied = time.perf_counter() - started
        assert b.sync.digest() == direct_b.sync.digest() == plain_b.sync.digest() == a.sync.digest()
        print(json.dumps({
            "ops": len(ops), "tag_unsigned_s": round(made_unsigned, 3), "tag_signed_s": round(made_signed, 3),
            "receive_relayed_s": round(received, 3), "receive_direct_s": round(direct, 3),
            "apply_unchecked_s": round(applied, 3),
            "sign_ratio": round(made_signed / made_unsigned, 2), "verify_ratio": round(received / applied, 2),
        }))  # fmt: skip
        for lib in (unsigned_a, a, b, direct_b, plain_b):
            lib.close()


if __name__ == "__main__":
    main()
