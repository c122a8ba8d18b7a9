"""Which operations a device lacks is said by number, not by time, and a device that signs two different operations
with one number is found out: whatever came first where, every device ends with the same operations.

- A device restored from a backup WITH its data dir (no high-water mark survives) numbers its next changes as the
  ones the restore lost: a device that got those newer changes first held a later time of it than the lost ones,
  and asking by time never brought them.
- A member signing two changes with one number (an equivocation) had both merged, a different pair on each device,
  unflagged: one is kept (the earlier), the same on every device, and the member is named as having done it.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from sdcore import net
from sdcore.api import Api
from sdcore.core import Core
from sdcore.net.testing import pair
from sdcore.sync import hlc, oplog, protocol, signing
from sdcore.sync.service import sync_of
from tests.functional.ssh_support import free_port
from tests.functional.test_sync_restore import eventually, start
from tests.functional.test_sync_transport import three_devices

ALPHA = str(uuid.UUID(int=0xA))


def tag_names(core: Core) -> set[str]:
    return {name for (name,) in core.library("Photos").read().execute("SELECT name FROM tags")}


def digest(core: Core) -> str:
    return str(core.library("Photos").sync.digest())


async def test_changes_lost_in_a_restore_of_the_whole_data_dir_reach_a_device_that_got_the_newer_ones_first(
    tmp_path: Path,
) -> None:
    ports = [free_port() for _ in range(3)]
    a = await start(tmp_path / "a", "alpha", ports[0])
    b = await start(tmp_path / "b", "beta", ports[1])
    c = await start(tmp_path / "c", "gamma", ports[2])
    try:
        for host, joiner in ((a, b), (a, c), (b, c)):
            await pair(net.attach(host), net.attach(joiner))
        for core in (a, b, c):
            await sync_of(core).start()
        photos = a.libraries.create("Photos")
        for other in ("beta", "gamma"):
            await sync_of(a).share(photos, other)
        await Api(a).library("Photos").tags.create("before")
        await eventually(lambda: all(tag_names(x) == {"before"} for x in (b, c)), 15, "the first sync")

        await a.close()  # the backup: alpha's whole data dir (its high-water marks too), taken while it is off
        backup = tmp_path / "backup"
        shutil.copytree(tmp_path / "a", backup, ignore=shutil.ignore_patterns("*.sock", "*.lock", ".lock"))

        await c.close()  # gamma away: only beta gets what alpha makes next
        a = await start(tmp_path / "a", "alpha", ports[0])
        await sync_of(a).start()
        await Api(a).library("Photos").tags.create("lost")
        await eventually(lambda: tag_names(b) == {"before", "lost"}, 15, "alpha's next tag on beta")
        await a.close()

        # alpha's disk dies: the whole data dir comes back from the backup; beta is away, gamma back
        shutil.rmtree(tmp_path / "a")
        shutil.copytree(backup, tmp_path / "a")
        await b.close()
        c = await start(tmp_path / "c", "gamma", ports[2])
        a = await start(tmp_path / "a", "alpha", ports[0])
        for core in (a, c):
            await sync_of(core).start()
        await Api(a).library("Photos").tags.create("after")  # numbered as "lost" was: no mark says otherwise
        await eventually(lambda: tag_names(c) == {"before", "after"}, 15, "alpha's new tag on gamma")
        alpha = str(a.device.id)
        await c.close()
        b = await start(tmp_path / "b", "beta", ports[1])
        c = await start(tmp_path / "c", "gamma", ports[2])
        assert c.library("Photos").sync.watermarks()[alpha] > b.library("Photos").sync.watermarks()[alpha]

        # all back: "lost" reaches gamma (which holds a later time of alpha's) and alpha, and "after" stays
        for core in (b, c):
            await sync_of(core).start()
        for core, others in ((a, (b, c)), (b, (a, c)), (c, (a, b))):
            for other in others:
                sync_of(core)._puller(str(other.device.id)).set()
        await eventually(lambda: all(tag_names(x) == {"before", "lost", "after"} for x in (a, b, c)), 30, "every tag on all")
        await eventually(lambda: digest(a) == digest(b) == digest(c), 30, "the same shared data on all three")
        numbers = [seq for (seq,) in b.library("Photos").read().execute(
            "SELECT seq FROM sync_ops WHERE origin = ? AND seq IS NOT NULL ORDER BY seq", (alpha,))]  # fmt: skip
        assert len(numbers) == len(set(numbers))  # one op of each number, the same on every device (the digest)
    finally:
        for core in (a, b, c):
            await core.close()


async def test_a_member_signing_two_changes_with_one_number_is_found_out_and_every_device_keeps_the_same_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with three_devices(tmp_path, [(0, 1), (0, 2), (1, 2)]) as (a, b, c):
        photos = a.libraries.create("Photos")
        for other in ("beta", "gamma"):
            await sync_of(a).share(photos, other)
        await Api(a).library("Photos").tags.create("harbour")
        await eventually(lambda: tag_names(b) == tag_names(c) == {"harbour"}, 15, "the first sync")

        # alpha turned hostile (a test with alpha's real key): two changes under its next number, one to each
        await net.attach(a).close()
        alpha = str(a.device.id)
        key = signing.signer_of(a.data_dir / "device_key")
        number = oplog.last_seq(photos.read(), alpha) + 1
        stamp = hlc.encode(int(time.time() * 1000), 0)
        forged = []
        for n, name in enumerate(("told-beta", "told-gamma")):
            op = oplog.make(alpha, stamp + n, "tag", number, uid=f"{stamp + n:032x}", field="name", value=name)
            forged.append(dataclasses.replace(op, sig=key.sign(op.signed_part(photos.id))))
        keys = {alpha: key.public_key}
        caplog.set_level(logging.WARNING, logger="sdcore.sync.shared")
        assert b.library("Photos").sync.receive([forged[0]], alpha, keys) == 1
        assert c.library("Photos").sync.receive([forged[1]], alpha, keys) == 1

        # beta and gamma sync with each other over SSH: both end with the earlier at once (the one that found the
        # conflict tells the other, whose op lost: it kept it for 30 s, till its next idle pull), and what alpha did
        # is said. Which of them records it is left to the order of their pulls: one that asks after the other
        # dropped its op meets only the kept one (evidence is not passed on)
        for core, other in ((b, c), (c, b)):
            sync_of(core)._puller(str(other.device.id)).set()
        await eventually(lambda: tag_names(b) == tag_names(c) == {"harbour", "told-beta"}, 5, "the same change kept")
        assert digest(b) == digest(c)
        found = []
        for core in (b, c):
            listed = {d.id: d for d in await Api(core).library("Photos").sharing.list()}
            found.append(listed[alpha].conflicts)
            assert listed[str(b.device.id)].conflicts == listed[str(c.device.id)].conflicts == 0
        assert 1 in found and set(found) <= {0, 1}
        said = [r.getMessage() for r in caplog.records if "signed conflicting operations" in r.getMessage()]
        assert said and alpha in said[0]


async def test_a_device_from_before_numbers_were_asked_for_is_asked_by_watermarks(tmp_path: Path) -> None:
    async with three_devices(tmp_path, [(0, 1)]) as (a, b, _):
        beta = sync_of(b)

        async def as_before(peer: Any, library: object, watermarks: object, limit: object) -> Any:
            return await beta._on_ops(peer, library, watermarks, limit)  # (no `held`: refused as bad arguments)

        net.attach(b).expose("sync_ops", as_before)  # (offered to connections made from now on)
        photos = a.libraries.create("Photos")
        await sync_of(a).share(photos, "beta")
        await Api(b).library("Photos").tags.create("from an older beta")
        await eventually(lambda: "from an older beta" in tag_names(a), 15, "beta's tag on alpha")
        assert str(b.device.id) in sync_of(a)._by_watermarks


@pytest.mark.parametrize(
    ("held", "what"),
    [
        ({ALPHA: [0, [[5, 6]] * 2]}, "past n and the run before"),
        ({ALPHA: [0, [[n * 2 + 2, n * 2 + 2] for n in range(oplog.MAX_RANGES + 1)]]}, "at most"),
        ({str(uuid.UUID(int=n)): [0, [[2, 2]] * 1 + [[n + 4, n + 4] for n in range(31)]] for n in range(40)}, "in all"),
        ({ALPHA: [0, [[3, 2]]]}, "past n"),
        ({ALPHA: [True, []]}, "held numbers of a device"),
        ({ALPHA: [0, [[2, 1 << 64]]]}, "past n"),
        ({"not a device": [0, []]}, "device id"),
    ],
)
def test_what_an_asker_says_it_holds_is_bounded_and_checked(held: dict[str, Any], what: str) -> None:
    with pytest.raises(protocol.Refused, match=what):
        protocol.held(held)
    assert protocol.held({ALPHA: [7, [[9, 12], [20, 20]]]}) == {ALPHA: [7, [[9, 12], [20, 20]]]}
