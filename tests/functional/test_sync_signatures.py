"""Who made a change of shared data is what its signature proves, never what a relaying member says.

Three devices in a chain: alpha paired with beta, beta with gamma; alpha and gamma never met. alpha's changes reach
gamma through beta and verify there with alpha's key, which came with them; gamma, a member turned hostile,
cannot pass a change off as alpha's to beta.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sdcore import net
from sdcore.api import Api
from sdcore.core import Core
from sdcore.index.indexer import index_location
from sdcore.net.frames import PermissionDenied
from sdcore.sync import catalogue, hlc, oplog, protocol, shared, signing
from sdcore.sync.members import Members
from sdcore.sync.service import sync_of
from tests.functional.test_sync_transport import eventually, three_devices


@pytest.fixture
async def chain(tmp_path: Path) -> AsyncIterator[tuple[Core, Core, Core]]:
    """alpha - beta - gamma on 127.0.0.1 (full trust), Photos shared by alpha with beta, by beta with gamma."""
    async with three_devices(tmp_path, [(0, 1), (1, 2)]) as (a, b, c):
        photos = a.libraries.create("Photos")
        await sync_of(a).share(photos, "beta")
        await sync_of(b).share(b.library("Photos"), "gamma")
        yield a, b, c


async def tags(core: Core) -> list[str]:
    return sorted(t.name for t in await Api(core).library("Photos").tags.list())


def tag_names(core: Core) -> set[str]:
    """The tags the library shows on that device (read in a thread by `eventually`)."""
    return {name for (name,) in core.library("Photos").read().execute("SELECT name FROM tags")}


async def test_a_change_relayed_from_a_device_never_paired_with_verifies_with_the_key_that_came_with_it(
    chain: tuple[Core, Core, Core],
) -> None:
    a, b, c = chain
    await Api(a).library("Photos").tags.create("harbour")
    await eventually(lambda: "harbour" in tag_names(c), 10, "alpha's tag on gamma")
    held = c.library("Photos").read().execute("SELECT key FROM sync_keys WHERE device = ?", (str(a.device.id),)).fetchone()
    assert held is not None and signing.device_of_key(held[0]) == str(a.device.id)


async def test_a_member_cannot_pass_off_a_change_as_another_devices(
    chain: tuple[Core, Core, Core], caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c = chain
    await Api(a).library("Photos").tags.create("harbour")
    await eventually(lambda: "harbour" in tag_names(c), 10, "alpha's tag on gamma")
    diary = a.libraries.create("Diary")  # not shared: an op signed by alpha there is worth nothing in Photos
    await Api(a).library("Diary").tags.create("from the diary")
    alpha, gamma = str(a.device.id), str(c.device.id)
    genuine = [op for op in oplog.ops_since(a.library("Photos").read(), {}, 100) if op.origin == alpha][-1]
    in_diary = [op for op in oplog.ops_since(diary.read(), {}, 100) if op.kind == "tag"][-1]
    gammas_key = signing.signer_of(c.data_dir / "device_key")
    photos_c = c.library("Photos")
    later = genuine.hlc + 1000

    def forged_as_alpha(name: str, stamp: int) -> oplog.Op:
        return oplog.make(alpha, stamp, "tag", uid=f"{stamp:032x}", field="name", value=name)

    unsigned = forged_as_alpha("unsigned", later)
    signed_by_gamma = forged_as_alpha("signed by gamma", later + 1)
    signed_by_gamma = dataclasses.replace(signed_by_gamma, sig=gammas_key.sign(signed_by_gamma.signed_part(photos_c.id)))
    altered = oplog.make(alpha, later + 2, "tag", uid=genuine.fields()["uid"], field="name", value="altered")
    altered = dataclasses.replace(altered, sig=genuine.sig)
    restamped = dataclasses.replace(genuine, hlc=later + 3)  # alpha's own op, its signature, at another time
    replayed = in_diary  # alpha's op of another library, as it was signed there (made after `genuine`)
    with photos_c.write() as db:  # gamma's log, as a hostile gamma would serve it
        for op in (unsigned, signed_by_gamma, altered, restamped, replayed):
            oplog.insert(db, op)

    caplog.set_level(logging.WARNING, logger="sdcore.sync.signing")
    signing.refusals._last.clear()
    await sync_of(b).pull(gamma)
    photos_b = b.library("Photos")
    held = {(o, h) for o, h in photos_b.read().execute("SELECT origin, hlc FROM sync_ops")}
    for op in (unsigned, signed_by_gamma, altered, restamped, replayed):
        assert (op.origin, op.hlc) not in held
    assert await tags(b) == ["harbour"]
    refused = [r.getMessage() for r in caplog.records if "refused from device" in r.getMessage()]
    assert len(refused) == 1 and gamma in refused[0] and "forged or altered" in refused[0]  # one line, not five

    # alpha's next change still reaches beta (nothing of alpha's was marked as held by the forgeries)
    await Api(a).library("Photos").tags.create("lighthouse")
    await eventually(lambda: tag_names(b) == {"harbour", "lighthouse"}, 10, "alpha's new tag")


async def test_a_member_cannot_stall_the_others_with_its_own_operations_badly_signed(
    chain: tuple[Core, Core, Core], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = chain
    monkeypatch.setattr(protocol, "MAX_OPS", 5)  # answers of 5 ops: a hostile gamma's 5 fill one
    gamma = str(c.device.id)
    with c.library("Photos").write() as db:  # gamma's log, as a hostile gamma serves it: its own ops, oldest of all
        for n in range(1, 6):
            op = oplog.make(gamma, n, "tag", uid=f"{n:032x}", field="name", value=f"junk{n}")
            oplog.insert(db, dataclasses.replace(op, sig=bytes(signing.SIG_SIZE)))
    await sync_of(b).pull(gamma)
    held = b.library("Photos").read().execute("SELECT count(*) FROM sync_ops WHERE origin = ?", (gamma,)).fetchone()[0]
    assert held == 0  # beta keeps none of them: relayed, alpha would refuse each, asking again for ever

    # so what beta writes still reaches alpha (before: every answer to alpha was gamma's five, all refused)
    await Api(b).library("Photos").tags.create("lighthouse")
    await sync_of(a).pull(str(b.device.id))
    await eventually(lambda: "lighthouse" in tag_names(a), 10, "beta's tag on alpha")


async def test_a_member_cannot_stop_the_sync_of_others_with_operations_of_hundreds_of_made_up_devices(
    chain: tuple[Core, Core, Core],
) -> None:
    a, b, c = chain
    photos_c = c.library("Photos")
    with photos_c.write() as db:  # a hostile gamma's log: one genuine-looking op of each of 300 devices it made up
        for n in range(300):
            made_up = signing.Signer(Ed25519PrivateKey.generate())
            op = oplog.make(made_up.device_id, hlc.encode(int(time.time() * 1000), 0), "tag",
                            uid=f"{n:032x}", field="name", value=f"fake{n}")  # fmt: skip
            oplog.insert(db, dataclasses.replace(op, sig=made_up.sign(op.signed_part(photos_c.id))))
            db.execute("INSERT INTO sync_keys (device, key) VALUES (?, ?)", (made_up.device_id, made_up.public_key))
    await sync_of(b).pull(str(c.device.id))
    origins = b.library("Photos").read().execute("SELECT count(DISTINCT origin) FROM sync_ops").fetchone()[0]
    assert origins <= protocol.MAX_WATERMARKS  # what beta asks with names every origin it holds

    # so beta still asks alpha for what it lacks (before: its watermarks of 300 origins were refused, at every pull)
    await Api(a).library("Photos").tags.create("lighthouse")
    await sync_of(b).pull(str(a.device.id))
    await eventually(lambda: "lighthouse" in tag_names(b), 10, "alpha's tag on beta")


async def test_a_member_cannot_hide_another_devices_earlier_operations_by_relaying_only_its_latest(
    chain: tuple[Core, Core, Core],
) -> None:
    a, b, c = chain
    alpha, gamma = str(a.device.id), str(c.device.id)
    alphas_key = signing.signer_of(a.data_dir / "device_key")
    photos_a, photos_b, photos_c = a.library("Photos"), b.library("Photos"), c.library("Photos")
    first = oplog.last_seq(photos_a.read(), alpha) + 1
    stamp = hlc.encode(int(time.time() * 1000), 0)
    made = []  # three tags alpha made (signed and numbered by alpha), not yet sent to anyone
    for n in range(3):
        op = oplog.make(alpha, stamp + n, "tag", first + n, uid=f"{stamp + n:032x}", field="name", value=f"made{n}")
        made.append(dataclasses.replace(op, sig=alphas_key.sign(op.signed_part(photos_a.id))))
    with photos_c.write() as db:  # a hostile gamma that got them serves only the latest
        oplog.insert(db, made[-1])
        db.execute("INSERT OR IGNORE INTO sync_keys (device, key) VALUES (?, ?)", (alpha, alphas_key.public_key))
    await sync_of(b).pull(gamma)
    assert (alpha, made[-1].hlc) not in set(photos_b.read().execute("SELECT origin, hlc FROM sync_ops"))
    assert photos_b.sync.watermarks().get(alpha, 0) < made[0].hlc  # not past the two hidden ones

    with photos_a.write() as db:  # alpha serves all three: beta takes them all (before: only the latest, for good)
        for op in made:
            oplog.insert(db, op)
    await sync_of(b).pull(alpha)
    assert {"made0", "made1", "made2"} <= tag_names(b)
    # a forged renumbering is refused: the number is signed
    renumbered = dataclasses.replace(made[-1], seq=first)
    assert not signing.verify(alphas_key.public_key, renumbered.signed_part(photos_a.id), renumbered.sig)


def members(core: Core) -> list[str]:
    return sorted(m.name for m in Members(core.library("Photos").folder).current())


async def test_a_member_not_paired_with_full_trust_cannot_remove_a_third_device(chain: tuple[Core, Core, Core]) -> None:
    a, b, c = chain
    photos_a, photos_c = a.library("Photos"), c.library("Photos")
    delta = signing.Signer(Ed25519PrivateKey.generate())  # a fourth member (it never connects: enough for the list)
    Members(photos_a.folder, photos_a.id, signing.signer_of(a.data_dir / "device_key")).add(delta.device_id, "delta")
    await sync_of(b).pull(str(a.device.id))
    assert "delta" in members(b)
    hostile = Members(photos_c.folder, photos_c.id, signing.signer_of(c.data_dir / "device_key"))
    hostile.add(delta.device_id, "delta")
    hostile.remove(delta.device_id)  # gamma's list, as a hostile gamma serves it: delta removed, signed by gamma
    await sync_of(b).pull(str(c.device.id))  # beta's user paired gamma with full trust: beta takes delta's removal
    await sync_of(a).pull(str(b.device.id))  # alpha never paired with gamma: it does not
    assert members(a) == ["beta", "delta", "gamma"]


async def test_a_device_told_it_was_unshared_signs_no_removal_of_the_others(tmp_path: Path) -> None:
    async with three_devices(tmp_path, [(0, 1), (0, 2), (1, 2)]) as (a, b, c):
        photos = a.libraries.create("Photos")
        await sync_of(a).share(photos, "beta")
        await sync_of(a).share(photos, "gamma")
        await sync_of(b).pull(str(a.device.id))
        # gamma, hostile, tells beta that beta was unshared: beta leaves, as if alpha's user had unshared it
        await net.attach(c).call("beta", "sync_unshare", library=str(photos.id), member=str(b.device.id))
        assert members(b) == []
        await sync_of(a).share(photos, "beta")  # alpha's user shares it with beta again
        await sync_of(a).pull(str(b.device.id))
        assert members(a) == ["beta", "gamma"]  # before: beta's signed removal of gamma reached alpha
        assert members(b) == ["alpha", "gamma"]


async def test_a_removed_device_cannot_share_the_library_back_by_itself(tmp_path: Path) -> None:
    async with three_devices(tmp_path, [(0, 1), (0, 2), (1, 2)]) as (a, b, c):
        photos = a.libraries.create("Photos")
        await sync_of(a).share(photos, "beta")
        await sync_of(a).share(photos, "gamma")
        await sync_of(b).pull(str(a.device.id))
        await sync_of(a).unshare(photos, "gamma")
        assert members(a) == ["beta"] and members(b) == ["alpha"]
        for member in ("alpha", "beta"):  # gamma, hostile, shares the library id back with each
            with pytest.raises(PermissionDenied, match="was removed from library"):
                await net.attach(c).call(member, "sync_share", library=str(photos.id), title="Photos", members=[])
        assert members(a) == ["beta"] and members(b) == ["alpha"]
        await sync_of(a).share(photos, "gamma")  # alpha's user shares it with gamma again: gamma is back
        assert members(a) == ["beta", "gamma"]


async def test_a_relay_cannot_rename_a_device_and_a_catalogue_keeps_the_name_paired_with(
    chain: tuple[Core, Core, Core], tmp_path: Path
) -> None:
    a, b, c = chain
    alpha, beta, gamma = (str(core.device.id) for core in chain)
    await sync_of(b).pull(gamma)
    await sync_of(a).pull(beta)

    def names(core: Core) -> dict[str, str]:
        return {d.id: d.name for d in sync_of(core).devices(core.library("Photos"))}

    assert names(a) == {alpha: "alpha", beta: "beta", gamma: "gamma"}  # gamma as it calls itself (never paired)
    photos_b = b.library("Photos")
    hostile = Members(photos_b.folder, photos_b.id, signing.signer_of(b.data_dir / "device_key"))
    hostile.add(gamma, "alpha")  # beta, hostile, relabels gamma in its list (a newer entry, signed by beta)
    b.device.rename("alpha")  # and calls itself alpha in its catalogue
    folder = tmp_path / "beta-files"
    folder.mkdir()
    (folder / "x.txt").write_text("x")
    await photos_b.jobs.wait(await index_location(photos_b, photos_b.locations.add(str(folder))))
    await sync_of(a).pull(beta)
    assert names(a) == {alpha: "alpha", beta: "beta", gamma: "gamma"}  # before: gamma listed as "alpha"
    assert catalogue.device_name(a.library("Photos"), uuid.UUID(beta)) == "beta"  # before: "alpha"


async def test_a_member_cannot_fill_the_disk_with_its_own_signed_operations(
    chain: tuple[Core, Core, Core], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c = chain
    monkeypatch.setattr(shared, "QUOTA_OPS", 50)  # an hour's quota of 50 ops, the hour a second
    monkeypatch.setattr(shared, "QUOTA_PERIOD", 1.0)
    gamma = str(c.device.id)
    photos_b, photos_c = b.library("Photos"), c.library("Photos")
    gammas_key = signing.signer_of(c.data_dir / "device_key")
    first = oplog.last_seq(photos_c.read(), gamma) + 1
    stamp = hlc.encode(int(time.time() * 1000), 0)
    with photos_c.write() as db:  # a hostile gamma's own ops, well signed, by the thousand (200 here)
        for n in range(200):
            op = oplog.make(gamma, stamp + n, "search", first + n, name=f"junk {n}", value=None)
            oplog.insert(db, dataclasses.replace(op, sig=gammas_key.sign(op.signed_part(photos_c.id))))

    def held() -> int:
        return int(photos_b.read().execute("SELECT count(*) FROM sync_ops WHERE origin = ? AND seq >= ?", (gamma, first)).fetchone()[0])

    caplog.set_level(logging.WARNING, logger="sdcore.sync.signing")
    signing.refusals._last.clear()
    began = time.monotonic()
    await sync_of(b).pull(gamma)
    assert 50 <= held() <= 50 * (1 + time.monotonic() - began) + 1  # (refilled at 50 a second while the pull ran)
    await sync_of(b).pull(gamma)
    refused = [m for m in caplog.messages if "past what one device may add" in m and m.startswith(f"refused from device {gamma}")]
    assert len(refused) == 1, caplog.messages  # said once (by beta: alpha, told by beta, may pull gamma's ops meanwhile)
    await asyncio.sleep(1.1)
    await sync_of(b).pull(gamma)  # an "hour" later: the next ones, without a gap
    assert 100 <= held() <= 50 * (1 + time.monotonic() - began) + 1  # never more than the quota let in
    seqs = [s for (s,) in photos_b.read().execute("SELECT seq FROM sync_ops WHERE origin = ? AND seq >= ? ORDER BY seq", (gamma, first))]
    assert seqs == list(range(first, first + len(seqs)))


async def test_a_device_holding_other_non_members_than_the_asker_does_not_stall_its_pull(
    chain: tuple[Core, Core, Core], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = chain
    monkeypatch.setattr(oplog, "MAX_STRANGERS", 3)
    monkeypatch.setattr(protocol, "MAX_OPS", 5)

    def strangers(core: Core, count: int, each: int) -> None:
        """`count` devices that are not members, `each` ops of each, in the device's log (as a copy brings them)."""
        library = core.library("Photos")
        stamp = hlc.encode(int(time.time() * 1000) - 60_000, 0)  # older than what comes next
        with library.write() as db:
            for n in range(count):
                made_up = signing.Signer(Ed25519PrivateKey.generate())
                db.execute("INSERT INTO sync_keys (device, key) VALUES (?, ?)", (made_up.device_id, made_up.public_key))
                for k in range(each):
                    op = oplog.make(made_up.device_id, stamp + 10 * n + k, "search", k + 1, name=f"s{n}.{k}", value=None)
                    oplog.insert(db, dataclasses.replace(op, sig=made_up.sign(op.signed_part(library.id))))

    strangers(c, 3, 1)
    await sync_of(b).pull(str(c.device.id))  # beta takes gamma's three (all it takes)
    strangers(a, 3, 2)  # alpha holds three others, six ops older than its next change
    await Api(a).library("Photos").tags.create("lighthouse")
    await sync_of(b).pull(str(a.device.id))
    assert "lighthouse" in tag_names(b)  # before: every answer was five ops of alpha's strangers, refused


async def test_a_device_past_its_quota_does_not_hold_up_the_operations_of_others(
    chain: tuple[Core, Core, Core], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = chain
    monkeypatch.setattr(shared, "QUOTA_OPS", 20)
    monkeypatch.setattr(protocol, "MAX_OPS", 5)
    alpha, gamma = str(a.device.id), str(c.device.id)
    photos_a, photos_b, photos_c = a.library("Photos"), b.library("Photos"), c.library("Photos")
    gammas_key, alphas_key = (signing.signer_of(core.data_dir / "device_key") for core in (c, a))
    first = oplog.last_seq(photos_c.read(), gamma) + 1
    stamp = hlc.encode(int(time.time() * 1000), 0)
    with photos_c.write() as db:  # a hostile gamma's own ops, oldest, then an op of alpha's it relays
        for n in range(100):
            op = oplog.make(gamma, stamp + n, "search", first + n, name=f"junk {n}", value=None)
            oplog.insert(db, dataclasses.replace(op, sig=gammas_key.sign(op.signed_part(photos_c.id))))
        op = oplog.make(alpha, stamp + 500, "tag", oplog.last_seq(photos_a.read(), alpha) + 1,
                        uid="ab" * 16, field="name", value="relayed")  # fmt: skip
        oplog.insert(db, dataclasses.replace(op, sig=alphas_key.sign(op.signed_part(photos_a.id))))
        db.execute("INSERT OR IGNORE INTO sync_keys (device, key) VALUES (?, ?)", (alpha, alphas_key.public_key))
    for _ in range(6):
        await sync_of(b).pull(gamma)
    assert "relayed" in tag_names(b)  # before: every answer held five of gamma's ops past its quota, refused
    held = photos_b.read().execute("SELECT count(*) FROM sync_ops WHERE origin = ? AND seq >= ?", (gamma, first)).fetchone()[0]
    assert held == 20
