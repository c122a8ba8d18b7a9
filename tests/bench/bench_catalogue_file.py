"""Should another device's catalogue be a database file of its own? Measured before anyone rebuilds the read paths
(issue 16's first-sync budget: a first sync of a 200,000-entry catalogue <= 2x scp of the library's database file).

Run: python tests/bench/bench_catalogue_file.py [--files 200000] [--rounds 3] [--only sync|transport|read|refusals]

In one run, side by side, alternating, median of the rounds, CPU (user+sys of every process that takes part) and wall:
1. scp of the owner's database.db over loopback (a real sshd: bench_net);
2. today's first sync (bench_catalogue's sync child: batches packed, msgpack, unpacked, applied);
3. the file design (sdcore.sync.catalogue_file), step by step: (a) the owner makes the catalogue file (`make`: its
   own rows only, INSERT ... SELECT into an ATTACHed new file; beside it the backup API's copy of the whole database,
   for scale), and refreshes a kept one (`refresh`); (b) the file moved over the product's SSH channel
   (RemoteFS.open_read from a real `sd serve`, as a copy job reads); (c) the receiver checks the untrusted file
   (`check`: header, exact schema, quick_check, the catalogue's rules as set-based queries, its own indexes) and
   builds the search index and sorted-search indexes in it; (d) ATTACH and read: listing one folder, and
   search (bench_catalogue part 3's queries) over three 200,000-entry databases vs the same rows in one.
4. The first sync through sdcore.sync.catalogue_transport (`fetch_catalogue_file` in this process, a receiver's
   core, from the owner's real `sd serve` sharing the library with it): the owner's file (a) kept and refreshed
   (1,000 changes), (b) made at the first ask; through `keep`, so listable and searchable. CPU of both sides.
   `--only transport` runs 1 and 4 alone. `--only pull` runs 1 and (c) the first sync as a user gets it: the
   receiver's sync service pulls (`SyncService.pull`: the FirstSync job fetches the file, its locations written once
   it lists, the watermark once it is searchable), the owner keeping its file (made when it shared); with the peak
   RSS of both sides (VmHWM, reset before each pull).
5. A self-check: the crafted files of tests/functional/crafted_catalogues.py (a trigger, a view, an index over a
   function, a malformed page, a row breaking each rule) must all be refused.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_catalogue  # noqa: E402
import bench_net  # noqa: E402

from sdcore.library.context import LibraryContext  # noqa: E402
from sdcore.library.library import Library  # noqa: E402
from sdcore.library.schema import add_functions  # noqa: E402
from sdcore.sync.catalogue import CatalogueRefused  # noqa: E402
from sdcore.sync.catalogue_file import check, make, refresh  # noqa: E402
from sdcore.sync.catalogue_store import SEARCH_INDEX, SORTED_INDEXES, ext_token  # noqa: E402
from tests.functional.crafted_catalogues import CRAFTED, DEVICE, FINE, tiny  # noqa: E402

# -- the owner's side (sdcore.sync.catalogue_file.make and refresh) -------------------------------------------------


def owner_library(owner: str, owner_id: str) -> Library:
    return Library(Path(owner), LibraryContext.this_device_only(uuid.UUID(owner_id)))


def change_some(database: Path, count: int) -> None:
    """What a rescan might write on the owner: `count` files' times changed and a folder renamed (not timed)."""
    conn = sqlite3.connect(database, isolation_level=None)
    add_functions(conn)
    with conn:
        conn.execute("UPDATE entries SET mtime = mtime + 1 WHERE id IN (SELECT id FROM entries WHERE kind = 'file'"
                     " ORDER BY random() LIMIT ?)", (count,))  # fmt: skip
        folder = conn.execute("SELECT e.id, p.path FROM entries e JOIN directory_paths p ON p.entry_id = e.id"
                              " WHERE e.kind = 'dir' AND e.files > 10 ORDER BY random() LIMIT 1").fetchone()  # fmt: skip
        conn.execute("UPDATE entries SET name = name || '-renamed' WHERE id = ?", (folder[0],))
        prefix = folder[1]
        conn.execute(
            "UPDATE directory_paths SET path = ?1 || '-renamed' || substr(path, length(?1) + 1)"
            " WHERE path = ?1 OR path GLOB ?1 || '/*'", (prefix,),
        )  # fmt: skip
    conn.close()


def digest(path: Path) -> int:
    conn = sqlite3.connect(path)
    rows = [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("locations", "entries", "directory_paths")]
    conn.close()
    return hash(repr(rows))


def backup_whole(database: Path, out: Path) -> None:
    """For scale: the backup API's copy of the owner's whole database (which holds what must not leave it)."""
    src, dst = sqlite3.connect(database), sqlite3.connect(out)
    src.backup(dst)
    src.close()
    dst.close()


# -- the receiver's side -------------------------------------------------------------------------------------------


class Clock:
    """CPU seconds of this process between ticks, into `times` by step."""

    def __init__(self, times: dict[str, float] | None) -> None:
        self.times, self.last = times, cpu_self()

    def tick(self, what: str) -> None:
        now = cpu_self()
        if self.times is not None:
            self.times[what] = self.times.get(what, 0.0) + now - self.last
        self.last = now


def receive(path: Path, device_id: str, times: dict[str, float]) -> None:
    """Everything the receiver does with a received catalogue file before it is attached to its library."""
    clock = Clock(times)
    check(path, uuid.UUID(device_id))
    clock.tick("check: header, schema, quick_check, rules, indexes")
    conn = sqlite3.connect("file::memory:", uri=True, isolation_level=None)
    add_functions(conn)  # for the search index (called by these statements, never by the schema)
    conn.create_function("ext_token", 1, ext_token, deterministic=True)
    try:
        conn.execute("ATTACH ? AS cat", (str(path),))
        conn.execute("PRAGMA cat.journal_mode = OFF")
        conn.execute("PRAGMA cat.synchronous = OFF")
        for sql in SEARCH_INDEX:
            conn.execute(sql)
        clock.tick("search index (names, folders)")
        for sql in SORTED_INDEXES:
            conn.execute(sql)
        clock.tick("sorted-search indexes (size, mtime, name)")
    finally:
        conn.close()
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


# -- measuring -----------------------------------------------------------------------------------------------------


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_of(pid: int, children: bool = True) -> float:
    """CPU seconds of a running process (and of its children it has waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def measured(into: dict[str, list[tuple[float, float]]], what: str, *pids: int) -> Iterator[None]:
    """CPU (this process, its children, and `pids` with theirs) and wall of the block, appended to into[what]."""
    before = cpu_self() + cpu_children() + sum(cpu_of(p) for p in pids)
    start = time.perf_counter()
    yield
    wall = time.perf_counter() - start
    time.sleep(0.3)  # a server reaps the child that served the connection
    into.setdefault(what, []).append((cpu_self() + cpu_children() + sum(cpu_of(p) for p in pids) - before, wall))


def median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def load() -> str:
    return bench_catalogue.load()


# -- 1-3: the first sync, three ways -------------------------------------------------------------------------------


async def bench_sync(tree: Path, rounds: int, transport_only: bool = False, pull_only: bool = False) -> None:
    from sdcore.core import Core
    from sdcore.library.library import create_folder
    from sdcore.sync.catalogue import start_tracking

    runs: dict[str, list[tuple[float, float]]] = {}
    steps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=bench_catalogue.CORPUS) as tmp:
        work = Path(tmp)
        owner, _receiver, owner_id = await bench_catalogue.owner_and_receiver(work, tree)
        library = owner_library(owner, owner_id)
        start_tracking(library)  # numbered once, when the library was first shared: not part of a first sync
        count = library.read().execute("SELECT count(*) FROM entries").fetchone()[0]
        library.close()
        database = Path(owner) / "database.db"
        print(f"owner: {count:,} entries, database.db {database.stat().st_size / 2**20:.1f} MiB  [{load()}]")
        sd, net, key = bench_net.start_serve(work)
        servers = [sd]
        try:
            sshd, port, known = bench_net.start_sshd(work, key.with_suffix(".pub").read_text().strip())
            servers.append(sshd)
            await net.fs_for("server").stat("/")  # connect once, like a long-lived core
            owner_dir, receiver_dir = Path(owner).parents[1], Path(_receiver).parents[1]
            await share_with(owner_dir, receiver_dir)
            owner_sd, address = bench_net.serve(owner_dir)
            servers.append(owner_sd)
            receiving = await Core(receiver_dir).__aenter__()
            for r in range(rounds):
                with measured(runs, "1 scp database.db", sshd.pid):
                    bench_net.scp(key, port, known, f"HOST:{database}", str(work / "scp.db"))
                os.unlink(work / "scp.db")
                sizes = await fetch_step(runs, steps, receiving, owner_sd.pid, address, database, pull_only)
                if transport_only or pull_only:
                    print(f"round {r + 1}: " + ", ".join(f"{k.split(' ')[0]} {v[-1][0]:.2f}" for k, v in runs.items())
                          + f" s CPU  [{load()}]")  # fmt: skip
                    continue

                receiver = create_folder(work / f"today{r}", "receiver")
                Library(receiver, LibraryContext.this_device_only(uuid.uuid4())).close()
                with measured(runs, "2 today's first sync (no wire)"):
                    subprocess.run([sys.executable, bench_catalogue.__file__, "--sync-child", owner, str(receiver),
                                    owner_id], check=True, capture_output=True)  # fmt: skip
                shutil.rmtree(work / f"today{r}")

                with measured(runs, "3a backup API, whole database (scale)"):
                    backup_whole(database, work / "whole.db")
                os.unlink(work / "whole.db")
                made = work / "made.db"
                library = owner_library(owner, owner_id)  # (opened outside what is measured, closed for the child)
                with measured(runs, "3a owner makes the catalogue file"):
                    make(library, made)
                library.close()
                change_some(database, 1000)
                library = owner_library(owner, owner_id)
                with measured(runs, "3a'' owner refreshes its kept file (1,000 changes)"):
                    refresh(library, made)
                if r == 0:  # the kept file, refreshed, is what a new one made now would be
                    make(library, work / "fresh.db")
                    assert digest(made) == digest(work / "fresh.db"), "the refreshed catalogue file differs"
                    os.unlink(work / "fresh.db")
                library.close()
                with measured(runs, "3a' owner copies a catalogue file it keeps"):
                    backup_whole(made, work / "kept.db")
                os.unlink(work / "kept.db")
                got = work / "got.db"
                with measured(runs, "3b file over sd's SSH channel", sd.pid):
                    await bench_net.sd_copy_file(net, str(made), str(got), atomic=False)
                times: dict[str, float] = {}
                with measured(runs, "3c receiver: check, every index, search index"):
                    receive(got, owner_id, times)
                for what, took in times.items():
                    steps.setdefault(what, []).append(took)
                sizes = made.stat().st_size, got.stat().st_size
                for p in (made, got):
                    p.unlink()
                print(f"round {r + 1}: " + ", ".join(f"{k.split(' ')[0]} {v[-1][0]:.2f}" for k, v in runs.items())
                      + f" s CPU  [{load()}]")  # fmt: skip
        finally:
            await net.close()
            if "receiving" in locals():
                await receiving.__aexit__(None, None, None)
            for proc in servers:
                proc.terminate()
                proc.wait()
    report(runs, steps, sizes, rounds)


async def share_with(owner_dir: Path, receiver_dir: Path) -> None:
    """The owner's default library shared with the receiver (paired with full trust), as `sd library share` does;
    its changes numbered from then on (not part of a first sync)."""
    from sdcore import net
    from sdcore.core import Core
    from sdcore.net.testing import pair
    from sdcore.sync.catalogue import start_tracking
    from sdcore.sync.service import sync_of

    async with Core(owner_dir) as a, Core(receiver_dir) as b:
        for core, name in ((a, "owner"), (b, "receiver")):
            core.device.rename(name)
            await net.attach(core).start("127.0.0.1:0")
            sync_of(core)  # (answers the share; not started)
        await pair(net.attach(a), net.attach(b))
        await sync_of(a).share(a.library(), "receiver")
        start_tracking(a.library())


async def fetch_step(runs: dict[str, list[tuple[float, float]]], steps: dict[str, list[float]], receiving: Any,
                     owner_pid: int, address: str, database: Path, pull: bool = False) -> tuple[int, int]:  # fmt: skip
    """4: the owner's catalogue file fetched and kept by the receiver, (b) made at the first ask, then (a) kept and
    refreshed after 1,000 changes; CPU of both sides, and of `keep` (on its thread) alone. Returns the sizes of the
    owner's file and of the one kept."""
    import dataclasses
    import json

    from sdcore import net
    from sdcore.sync import catalogue_file, catalogue_store
    from sdcore.sync.catalogue import catalogue_held, forget_catalogue
    from sdcore.sync.catalogue_transport import FRESH, OUTGOING, fetch_catalogue_file
    from sdcore.sync.service import sync_of

    (peer,) = [p for p in net.attach(receiving).trust.peers() if p.name == "owner"]
    peer = dataclasses.replace(peer, addresses=(address,))
    net.attach(receiving).trust.add(peer)
    library = receiving.libraries.open(json.loads((database.parent / "library.json").read_text())["id"])
    patched = [(catalogue_store, "keep", "keep: all"), (catalogue_file, "check", "keep: check"),
               (catalogue_store, "_index_for_reads", "keep: search index, sorted-search indexes")]  # fmt: skip
    real = [getattr(module, name) for module, name, _what in patched]
    for (module, name, what), work in zip(patched, real, strict=True):
        setattr(module, name, on_thread_clock(work, steps.setdefault(what, [])))
    try:
        if pull:
            await asyncio.sleep(FRESH + 1)
            change_some(database, 1000)
            kept = database.parent / catalogue_store.FOLDER / OUTGOING
            await asyncio.to_thread(forget_catalogue, library, peer.id)
            for pid in (owner_pid, os.getpid()):
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak RSS from here
            with measured(runs, PULL, owner_pid):
                await sync_of(receiving).pull(str(peer.id))
            steps.setdefault("peak RSS MiB: the owner's sd serve", []).append(peak_rss(owner_pid))
            steps.setdefault("peak RSS MiB: the receiver (this process)", []).append(peak_rss(os.getpid()))
            assert catalogue_held(library, peer.id) and catalogue_store.kept(library), "not kept"
            return kept.stat().st_size, catalogue_store.path_of(library, peer.id).stat().st_size
        for what in ("4b first sync by sync_catalogue_file, file made", "4a first sync by sync_catalogue_file, file kept"):
            await asyncio.sleep(FRESH + 1)  # the owner answers an asker's next ask from 0 with its copy for FRESH s
            kept = database.parent / catalogue_store.FOLDER / OUTGOING
            if what.startswith("4b"):
                kept.unlink(missing_ok=True)
            else:
                change_some(database, 1000)
            catalogue_store.forget(library, peer.id)
            with measured(runs, what, owner_pid):
                held = await fetch_catalogue_file(sync_of(receiving), peer, library)
            assert held.entries > 1000 and catalogue_store.kept(library), "not kept"
        return kept.stat().st_size, catalogue_store.path_of(library, peer.id).stat().st_size
    finally:
        for (module, name, _what), work in zip(patched, real, strict=True):
            setattr(module, name, work)


PULL = "4c first sync as a user gets it (pull, file kept)"


def peak_rss(pid: int) -> float:
    """A process's peak resident memory (since its clear_refs was reset), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def on_thread_clock(work: Any, into: list[float]) -> Any:
    """`work`, appending the CPU seconds of the thread it runs on to `into` at each call."""

    def timed(*args: Any) -> Any:
        started = time.thread_time()
        try:
            return work(*args)
        finally:
            into.append(time.thread_time() - started)

    return timed


def report(runs: dict[str, list[tuple[float, float]]], steps: dict[str, list[float]], sizes: tuple[int, int],
           rounds: int) -> None:  # fmt: skip
    scp_cpu, scp_wall = median(runs["1 scp database.db"])
    print(f"\ncatalogue file {sizes[0] / 2**20:.1f} MiB (with the receiver's indexes and search index {sizes[1] / 2**20:.1f}"
          f" MiB); median of {rounds}, CPU of every process taking part, wall")  # fmt: skip
    print(f"{'step':48} {'CPU s':>7} {'x scp':>6} {'wall s':>7} {'x scp':>6}")
    for what, taken in runs.items():
        c, w = median(taken)
        print(f"{what:48} {c:7.2f} {c / scp_cpu:6.2f} {w:7.2f} {w / scp_wall:6.2f}")
    print("  the receiver's steps (CPU s, median):")
    for what, taken in steps.items():
        print(f"    {what:44} {statistics.median(taken):7.3f}")
    indexes = statistics.median(steps["keep: search index, sorted-search indexes"])
    for what in ("4a first sync by sync_catalogue_file, file kept", "4b first sync by sync_catalogue_file, file made", PULL):
        if what not in runs:
            continue
        c, w = median(runs[what])
        print(f"{what[:48]}:")
        for name, minus in (("  all, searchable (what keep makes)", 0.0), ("  listable (keep without its indexes)", indexes)):
            verdict = "meets" if c - minus <= 2 * scp_cpu else "misses"
            print(f"{name:48} {c - minus:7.2f} {(c - minus) / scp_cpu:6.2f} {w - minus:7.2f} {(w - minus) / scp_wall:6.2f}"
                  f"  {verdict} 2x scp (CPU)")  # fmt: skip
    if "search index (names, folders)" not in steps:
        return
    search = statistics.median(steps["search index (names, folders)"])
    sort = statistics.median(steps["sorted-search indexes (size, mtime, name)"])
    receiver = median(runs["3c receiver: check, every index, search index"])
    for owner in ("3a owner makes the catalogue file", "3a' owner copies a catalogue file it keeps"):
        parts = [median(runs[owner]), median(runs["3b file over sd's SSH channel"]), receiver]
        print(f"file design, the owner {'makes the file' if owner.startswith('3a ') else 'keeps the file'}:")
        for name, minus in (("  all, sorted searches ready", 0.0), ("  searchable (sorted-search indexes after)", sort),
                            ("  listable (search index and those after)", sort + search)):  # fmt: skip
            c = sum(p[0] for p in parts) - minus
            w = sum(p[1] for p in parts) - minus
            verdict = "meets" if c <= 2 * scp_cpu else "misses"
            print(f"{name:48} {c:7.2f} {c / scp_cpu:6.2f} {w:7.2f} {w / scp_wall:6.2f}  {verdict} 2x scp (CPU)")
    c, w = median(runs["2 today's first sync (no wire)"])
    print(f"{'today (for comparison, no SSH)':48} {c:7.2f} {c / scp_cpu:6.2f} {w:7.2f} {w / scp_wall:6.2f}")


# -- 3d: reading across attached catalogues ------------------------------------------------------------------------


def bench_read(keep: Path, per_device: int, rounds: int) -> None:
    """Search (bench_catalogue part 3's queries) over three devices' 200,000 entries each: in one database (today) vs
    in three databases, each searched and the hits merged (the file design: one search index per catalogue)."""
    from sdcore.search import Query, run

    libraries = []
    for name, devices in (("one", 3), ("dev0", 1), ("dev1", 1), ("dev2", 1)):
        where = keep / name
        if not (where / "three.sdlibrary").exists():
            where.mkdir(parents=True, exist_ok=True)
            bench_catalogue.make_three(where, per_device * devices, devices).close()
        libraries.append(Library(where / "three.sdlibrary", LibraryContext.this_device_only(uuid.uuid4())))
    one, split = libraries[0], libraries[1:]
    words = bench_catalogue.WORDS
    queries = [Query(w) for w in words] + [Query(f"{a} {b}") for a, b in zip(words, words[1:], strict=False)] + [
        Query("", ext=("pdf",), limit=100), Query("sierra", sort="size"), Query("tango_golf"), Query("*.md", limit=50),
    ]  # fmt: skip
    for q in queries[:3]:
        run(one, q)
        for lib in split:
            run(lib, q)

    def merged(q: Query) -> None:  # each database's best `limit`, merged: what a search across attached files returns
        hits = [h for lib in split for h in run(lib, q)]
        hits.sort(key=lambda h: (-h.size, h.name) if q.sort == "size" else (h.name,))
        del hits[q.limit :]

    cpu: dict[str, list[list[float]]] = {"one database": [], "three databases": []}
    wall: dict[str, list[list[float]]] = {"one database": [], "three databases": []}
    worst: dict[str, dict[str, float]] = {"one database": {}, "three databases": {}}
    for _ in range(rounds):
        for what, search in (("one database", lambda q: run(one, q)), ("three databases", merged)):
            took, waited = [], []
            for q in queries:
                start, began = time.perf_counter(), time.process_time()
                search(q)
                took.append((time.process_time() - began) * 1000)
                waited.append((time.perf_counter() - start) * 1000)
                key = f"{q.text!r} ext={q.ext} sort={q.sort}"
                worst[what][key] = max(worst[what].get(key, 0.0), took[-1])
            cpu[what].append(sorted(took))
            wall[what].append(sorted(waited))
    total = one.read().execute("SELECT count(*) FROM entries").fetchone()[0]
    print(f"\nsearch over {total:,} entries of three devices ({len(queries)} queries, median of {rounds} rounds,"
          f" CPU and wall)  [{load()}]:")  # fmt: skip
    for what in cpu:
        (c50, c99), (w50, w99) = (
            (statistics.median(statistics.median(t) for t in per), statistics.median(t[int(len(t) * 0.99) - 1] for t in per))
            for per in (cpu[what], wall[what])
        )
        slow = ", ".join(f"{k} {v:.0f}" for k, v in sorted(worst[what].items(), key=lambda x: -x[1])[:3])
        print(f"  {what:16} CPU p50 {c50:6.1f} ms p99 {c99:6.1f} ms; wall p50 {w50:6.1f} ms p99 {w99:6.1f} ms;"
              f" slowest (CPU ms): {slow}")  # fmt: skip

    # listing one folder: the biggest folder of a device, from one database vs from an ATTACHed catalogue file
    folder = one.read().execute("SELECT parent_id FROM entries GROUP BY parent_id ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    sql = ("SELECT id, name, kind, size, mtime, hidden FROM {s}entries WHERE parent_id = ? ORDER BY name"
           " COLLATE NOCASE")  # fmt: skip
    conn = split[0].read()
    made = keep / "dev0.catalogue.db"
    if not made.exists():  # made by dev0's library opened as its own device's
        device = conn.execute("SELECT device_id FROM locations LIMIT 1").fetchone()[0]
        split[0].close()
        with tempfile.TemporaryDirectory(dir=keep) as tmp:
            staged = Path(tmp) / "c.db"
            owner = owner_library(str(keep / "dev0" / "three.sdlibrary"), device)
            make(owner, staged)
            owner.close()
            check(staged, uuid.UUID(device))
            staged.rename(made)
        split[0] = Library(keep / "dev0" / "three.sdlibrary", LibraryContext.this_device_only(uuid.uuid4()))
    reader = one.read()  # the library's own read connection (its cache), with the catalogue file ATTACHed to it
    start = time.perf_counter()
    reader.execute("ATTACH ? AS cat", (f"file:{made}?mode=ro",))
    reader.execute("SELECT count(*) FROM cat.locations").fetchone()
    attach = (time.perf_counter() - start) * 1000
    own_folder = reader.execute("SELECT parent_id FROM cat.entries GROUP BY parent_id ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    lists: dict[str, list[float]] = {"one database": [], "attached catalogue": []}
    for _ in range(max(rounds, 9)):
        for what, statement, arg in (("one database", sql.format(s=""), folder), ("attached catalogue", sql.format(s="cat."), own_folder)):
            began = time.process_time()
            rows = reader.execute(statement, (arg,)).fetchall()
            lists[what].append((time.process_time() - began) * 1000)
    print(f"listing the biggest folder ({len(rows)} entries, CPU, median of {len(lists['one database'])}): " + ", ".join(
        f"{what} {statistics.median(t):.2f} ms" for what, t in lists.items()) + f"; ATTACH + first read {attach:.1f} ms")  # fmt: skip
    reader.execute("DETACH cat")
    for lib in libraries:
        lib.close()


# -- 4: crafted files (tests/functional/crafted_catalogues.py) ----------------------------------------------------


def self_check() -> None:
    """Every crafted file is refused, and every fine one accepted (as tests/functional/test_catalogue_file.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        for i, (_what, mutate, loose) in enumerate(FINE):
            check(tiny(Path(tmp) / f"fine{i}.db", mutate, loose), uuid.UUID(DEVICE))
        failures = []
        for i, crafted in enumerate(CRAFTED):
            try:
                check(crafted.make(Path(tmp) / f"{i}.db"), uuid.UUID(DEVICE), crafted.limits)
            except CatalogueRefused as exc:
                print(f"  refused {crafted.what}: {exc}")
            else:
                failures.append(crafted.what)
                print(f"  ACCEPTED {crafted.what}")
        if failures:
            sys.exit(f"accepted {len(failures)} crafted files: {', '.join(failures)}")
        print(f"all {len(CRAFTED)} crafted files refused; {len(FINE)} fine ones accepted")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("sync", "transport", "pull", "read", "refusals"))
    parser.add_argument("--read-keep", type=Path, default=bench_catalogue.CORPUS / "catalogue-file-read",
                        help="where the read part's libraries are made once and reused")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("SD_DATA_DIR", str(bench_catalogue.CORPUS / "unused-data"))
    if args.only in (None, "refusals"):
        self_check()
    if args.only in (None, "sync", "transport", "pull"):
        tree = bench_catalogue.corpus(f"catalogue-{args.files}", args.files, args.files // 20)
        asyncio.run(bench_sync(tree, args.rounds, transport_only=args.only == "transport", pull_only=args.only == "pull"))
    if args.only in (None, "read"):
        bench_read(args.read_keep, args.files, args.rounds)


if __name__ == "__main__":
    main()
