"""What closing readers' descriptors through sdcore.fs.held costs: 10,000 small files copied (copy_file), hashed
whole (hash_file) and identified (cas.identify), CPU time side by side, rounds interleaved.

Run: python tests/bench/bench_held.py [--files N] [--rounds N]. Variants: `os.close` (as before held existed),
`held, no library open` (no fstat), `held, a library open` (copy_file and identify reuse their fstat; hash_file
makes one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sdcore.fs import held  # noqa: E402
from sdcore.index import cas  # noqa: E402
from sdcore.library import Libraries  # noqa: E402
from sdcore.ops import localcopy  # noqa: E402

PLAIN = types.SimpleNamespace(close=lambda fd, st=None: os.close(fd))


def run(work: Callable[[], None], module_held: object) -> float:
    localcopy.held = module_held  # type: ignore[assignment]
    cas.held = module_held  # type: ignore[assignment]
    try:
        start = time.process_time()
        work()
        return time.process_time() - start
    finally:
        localcopy.held = held
        cas.held = held


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-held-"))
    try:
        src = root / "src"
        src.mkdir()
        names = [str(src / f"f{i:05}") for i in range(args.files)]
        for name in names:
            with open(name, "wb") as f:
                f.write(os.urandom(2048))
        dst = root / "dst"
        dst.mkdir()
        lib = Libraries(root / "libraries").create("Bench")
        lib.close()

        def copy() -> None:
            for i, name in enumerate(names):
                target = str(dst / f"f{i:05}")
                localcopy.copy_file(name, target, target + ".tmp", replace=True)

        def hash_all() -> None:
            for name in names:
                localcopy.hash_file(name)

        def identify_all() -> None:
            for name in names:
                cas.identify(name)

        totals: dict[tuple[str, str], float] = {}
        variants = ["os.close", "held, no library open", "held, a library open"]
        for round_ in range(args.rounds):
            for work_name, work in (("copy_file", copy), ("hash_file", hash_all), ("identify", identify_all)):
                for variant in variants[round_ % 3 :] + variants[: round_ % 3]:  # each goes first in turn
                    opened = Libraries(root / "libraries").open("Bench") if variant.endswith("library open") else None
                    try:
                        spent = run(work, PLAIN if variant == "os.close" else held)
                    finally:
                        if opened is not None:
                            opened.close()
                    totals[work_name, variant] = totals.get((work_name, variant), 0.0) + spent
        print(f"{args.files} files of 2 KiB, {args.rounds} rounds, CPU seconds per round (load {os.getloadavg()[0]:.1f})")
        for work_name in ("copy_file", "hash_file", "identify"):
            base = totals[work_name, "os.close"]
            row = "  ".join(
                f"{variant}: {totals[work_name, variant] / args.rounds:.3f}s ({totals[work_name, variant] / base:.3f}x)"
                for variant in ("os.close", "held, no library open", "held, a library open")
            )
            print(f"{work_name:10} {row}")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
