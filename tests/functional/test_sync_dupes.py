"""`sd dupes --devices`: copies of one content on two devices of a library, proven by a full BLAKE3 that each
device makes of its own copy (over the real SSH channel between two cores on 127.0.0.1), never by the sampled
cas_id alone while both are online; a device out of reach is said to be held by the sampled id only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import blake3
import pytest

from sdcore import net
from sdcore.api import Api
from sdcore.core import Core
from sdcore.index.cas import cas_id
from sdcore.index.indexer import index_location
from sdcore.net.testing import pair
from sdcore.sync.catalogue_store import global_id, slot_of
from sdcore.sync.service import sync_of
from tests.functional.kept import kept_names

SIZE = 1 << 20  # sampled: a header, four samples, a footer
MIDDLE = 100_000  # between the first sample and the second: outside every sample


def big(path: Path, seed: int, changed: bool = False) -> bytes:
    data = bytearray(blake3.blake3(bytes([seed])).digest(length=SIZE))
    if changed:
        data[MIDDLE] ^= 0xFF
    path.write_bytes(data)
    return bytes(data)


@contextlib.asynccontextmanager
async def alpha_and_beta(tmp_path: Path) -> AsyncIterator[tuple[Core, Core]]:
    """Two cores on 127.0.0.1, alpha and beta, paired and syncing (also the bench's, bench_dupes_devices.py)."""
    async with Core(tmp_path / "a") as a, Core(tmp_path / "b") as b:
        for core, name in ((a, "alpha"), (b, "beta")):
            core.device.rename(name)
            await net.attach(core).start("127.0.0.1:0")
        await pair(net.attach(a), net.attach(b))
        for core in (a, b):
            await sync_of(core).start()
        yield a, b


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[Core, Core]]:
    async with alpha_and_beta(tmp_path) as both:
        yield both


async def test_copies_on_two_devices_with_one_sampled_id_are_proven_only_when_their_full_hashes_agree(
    two: tuple[Core, Core], tmp_path: Path
) -> None:
    a, b = two
    on_a, on_b = tmp_path / "on-alpha", tmp_path / "on-beta"
    on_a.mkdir()
    on_b.mkdir()
    big(on_a / "same.bin", 1)
    big(on_b / "same-copy.bin", 1)
    big(on_a / "look-alike.bin", 2)
    big(on_b / "look-alike.bin", 2, changed=True)  # one byte differs where the sampling never looks
    assert cas_id(str(on_a / "look-alike.bin")) == cas_id(str(on_b / "look-alike.bin"))
    assert (on_a / "look-alike.bin").read_bytes() != (on_b / "look-alike.bin").read_bytes()

    photos = a.libraries.create("Photos")
    await sync_of(a).share(photos, "beta")
    for core, folder in ((a, on_a), (b, on_b)):
        library = core.library("Photos")
        record = await library.jobs.wait(await index_location(library, library.locations.add(str(folder), mode="content")))
        assert record.state == "completed", record.error
    lib = Api(a).library("Photos")
    deadline = time.monotonic() + 20
    while len({c.device_id for g in await lib.duplicates_across_devices() for c in g.copies}) < 2 or (
        "look-alike.bin" not in await asyncio.to_thread(kept_names, a.library("Photos"), b.device.id)
    ):
        assert time.monotonic() < deadline, "beta's catalogue never reached alpha"
        await asyncio.sleep(0.1)

    groups = await lib.duplicates_across_devices()
    assert [(g.proven, sorted(os.path.basename(c.path) for c in g.copies)) for g in groups] == [
        (True, ["same-copy.bin", "same.bin"])
    ]  # the look-alikes share a cas_id, not a content: not reported
    assert groups[0].full_hash == blake3.blake3((on_a / "same.bin").read_bytes()).hexdigest()
    # each ask used one session of beta's core, closed after it (a device allows 32 at once): what stays open is
    # alpha's one RPC session, which the sync pulls over
    sessions = lambda: sum(len(c._sessions) for c in net.attach(b)._incoming)  # noqa: E731
    deadline = time.monotonic() + 10
    while sessions() > 1:
        assert time.monotonic() < deadline, f"{sessions()} sessions open on beta"
        await asyncio.sleep(0.05)
    # beta hashed its own copy: the hash it keeps for it is in its library, not alpha's
    kept = b.library("Photos").read().execute("SELECT count(*) FROM file_hashes").fetchone()[0]
    assert kept >= 1
    # a device hashes only its own files: never another device's it knows from its catalogue (nor a made-up id)
    alphas = a.library("Photos").read().execute("SELECT id FROM entries WHERE name = 'same.bin'").fetchone()[0]
    theirs = global_id(slot_of(b.library("Photos"), a.device.id), alphas)  # how beta's library names it
    assert await Api(b).library("Photos").full_hashes([theirs, 10**12]) == [None, None]

    # beta goes away: its copies are held by the sampled id from the catalogue, and said to be
    await net.attach(b).close()
    groups = await lib.duplicates_across_devices()
    assert sorted((g.proven, tuple(g.offline), sorted(os.path.basename(c.path) for c in g.copies)) for g in groups) == [
        (False, (b.device.id,), ["look-alike.bin", "look-alike.bin"]),
        (False, (b.device.id,), ["same-copy.bin", "same.bin"]),
    ]
