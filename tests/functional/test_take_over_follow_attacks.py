"""Attacks on the follow of a take-over (sdcore.sync.shared `_follow_taken`): an op naming a file of a location taken
over here by its old owner's id makes this device sign an op of its own on its entry. What a member can make it
sign, how many, and whether a removal here holds. Real cores, real catalogue files, loop-mounted ext4 disks."""

from __future__ import annotations

import resource
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sdcore import metadata, tags
from sdcore.core import Core
from sdcore.library import Library
from sdcore.library.entries import entry_at
from sdcore.library.volume_locations import take_over
from tests.functional.test_catalogue import alpha, beta, device, index, sync  # noqa: F401 -- fixtures
from tests.functional.test_kept_catalogue_gaps import entries_only_in_its_file
from tests.functional.test_volume_hand_over import photos_disk

NAMES = ("beach.jpg", "harbour.jpg")


def signed_here(library: Library) -> int:
    """How many ops this device has signed."""
    me = str(library.context.device_id)
    return int(library.read().execute("SELECT count(*) FROM sync_ops WHERE origin = ?", (me,)).fetchone()[0])


def pull(here: Library, there: Library) -> int:
    """What `here`'s pull of `there`'s ops does."""
    return here.sync.apply(there.sync.ops_since(here.sync.watermarks(), 100_000))


@asynccontextmanager
async def taken_over(
    alpha: Core, beta: Core, tmp_path: Path, home: bool = False  # noqa: F811
) -> AsyncIterator[tuple[Path, Path]]:
    """A disk of alpha's (its folder 2019: NAMES), tagged 'sea' on the harbour there, taken over by beta; with `home`
    a location of alpha's own too (cat.jpg). Yields (the disk's folder, alpha's home)."""
    with photos_disk(tmp_path) as (_disk, media):
        folder, house = media / "2019", tmp_path / "alpha-home"
        folder.mkdir()
        house.mkdir()
        for name in NAMES:
            (folder / name).write_bytes(name.encode() * 50)
        (house / "cat.jpg").write_bytes(b"meow" * 50)
        a, b = alpha.library(), beta.library()
        await index(a, a.locations.add(str(folder), mode="content"))
        if home:
            await index(a, a.locations.add(str(house), mode="content"))
        tags.create(a, "sea")
        tags.assign(a, "sea", [entry_at(a, str(folder / "harbour.jpg"))])
        entries_only_in_its_file(b, a)
        pull(b, a)
        [taken] = take_over(b)
        await index(b, taken)
        yield folder, house


async def test_a_member_naming_files_outside_the_disk_taken_over_or_nothing_makes_this_device_sign_nothing(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    """alpha (a member: any member may say anything of any file) names alpha's other files, beta's own, a device
    unknown here, ids no entry has and the largest id a target takes: beta takes each op, crashes on none, shows
    each on its own target only and signs nothing of its own for any of them."""
    async with taken_over(alpha, beta, tmp_path, home=True) as (folder, house):
        a, b = alpha.library(), beta.library()
        cat = entry_at(a, str(house / "cat.jpg"))
        betas_beach = entry_at(b, str(folder / "beach.jpg"), beta.device.id)
        before = signed_here(b)
        with a.write() as db:
            uid = a.sync.uid_of(db, tags.get(a, "sea").id)
            for target in (
                f"e:{alpha.device.id}:{cat}",  # alpha's own file, not on the disk
                f"e:{beta.device.id}:{betas_beach}",  # beta's file, by beta's id: shown, not said again
                f"e:{uuid.uuid4()}:{entry_at(a, str(folder / 'harbour.jpg'))}",  # alpha's id, another device
                f"e:{alpha.device.id}:999999999999999999",  # the largest id a target takes
                f"e:{alpha.device.id}:0",
            ):
                a.sync.record(db, "note", target=target, value="said")
                a.sync.record(db, "fav", target=target, value=True)
                a.sync.tag(db, uid, [target])
        assert pull(b, a) == 15
        assert signed_here(b) == before
        assert metadata.note(b, betas_beach) == "said" and metadata.note(b, entry_at(b, str(house / "cat.jpg"), alpha.device.id)) == "said"


async def test_ten_thousand_ops_on_the_owners_ids_of_files_taken_over_make_one_op_here_per_file_and_field(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    """alpha, not told, flips the note, the favourite mark and the tag of the disk's two files 10,000 times in all:
    beta follows with at most one op per file and field (the last word), a second pull of the same makes none, and
    ping-pong between the two (each pulling the other's ops) makes nothing more; the batch's CPU time is printed."""
    async with taken_over(alpha, beta, tmp_path) as (folder, _house):
        a, b = alpha.library(), beta.library()
        ids = [entry_at(a, str(folder / name)) for name in NAMES]
        with a.write() as db:
            uid = a.sync.uid_of(db, tags.get(a, "sea").id)
            for n in range(2500):
                for entry_id in ids:
                    target = f"e:{alpha.device.id}:{entry_id}"
                    a.sync.record(db, "note", target=target, value=f"note {n}")
                    a.sync.record(db, "fav", target=target, value=n % 2 == 0)
                if n % 2:
                    a.sync.tag(db, uid, [f"e:{alpha.device.id}:{ids[1]}"])
                else:
                    a.sync.untag(db, uid, f"e:{alpha.device.id}:{ids[1]}")
        before = signed_here(b)
        ops = a.sync.ops_since(b.sync.watermarks(), 100_000)
        assert len(ops) >= 10_000
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        assert b.sync.apply(ops) == len(ops)
        after = resource.getrusage(resource.RUSAGE_SELF)
        print(f"apply of {len(ops)} ops: {after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime:.2f} s CPU")
        made = signed_here(b) - before
        assert made <= 2 * 2 + 1  # a note and a mark per file, the tag on the harbour
        betas = [entry_at(b, str(folder / name), beta.device.id) for name in NAMES]
        assert [metadata.note(b, e) for e in betas] == ["note 2499", "note 2499"]
        assert metadata.favorites(b) == []  # (the last flip: off)
        assert [t.entry_id for t in tags.entries(b, "sea")] == [betas[1]]
        for _ in range(3):
            pull(a, b)
            pull(b, a)
        assert signed_here(b) - before == made and a.sync.digest() == b.sync.digest()


async def test_a_late_removal_by_the_owners_id_leaves_a_tag_put_on_again_here_after_it(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    """alpha, not told of the take over, takes 'sea' off the harbour; beta's user, later, took it off and put it on
    again here: the tag stays (alpha's removal never saw that add, as between any two devices tagging one file), and
    a replay of alpha's ops brings back nothing beta's user took off."""
    async with taken_over(alpha, beta, tmp_path) as (folder, _house):
        a, b = alpha.library(), beta.library()
        harbour = entry_at(a, str(folder / "harbour.jpg"))
        betas_harbour = entry_at(b, str(folder / "harbour.jpg"), beta.device.id)
        tags.remove(a, "sea", [harbour])
        time.sleep(0.01)  # (a later millisecond: beta's user acts after alpha)
        tags.remove(b, "sea", [betas_harbour])
        tags.assign(b, "sea", [betas_harbour])
        pull(b, a)
        assert [t.entry_id for t in tags.entries(b, "sea")] == [betas_harbour]
        pull(a, b)
        assert a.sync.digest() == b.sync.digest()

        tags.remove(b, "sea", [betas_harbour])  # taken off here: a replay of alpha's ops does not put it back
        assert b.sync.apply(a.sync.ops_since({}, 100_000)) == 0 and tags.entries(b, "sea") == []


async def test_the_disk_taken_back_by_its_first_owner_each_following_the_others_old_ids_makes_no_loop(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    """Beta took alpha's disk over; the disk goes back to alpha, which takes it over from beta (its own location of
    it forgotten first): each now says again what the other's old ids get. Notes written on both sides at once, by
    every id each ever had, and tags put on and off: a few rounds of each pulling the other settle, nothing more is
    signed after, and both hold the same shared data."""
    async with taken_over(alpha, beta, tmp_path) as (folder, _house):
        a, b = alpha.library(), beta.library()
        old_harbour = entry_at(a, str(folder / "harbour.jpg"))
        betas_harbour = entry_at(b, str(folder / "harbour.jpg"), beta.device.id)
        sync(b, a)
        a.locations.remove(next(loc.id for loc in a.locations.list() if loc.device_id == alpha.device.id))
        [back] = take_over(a)
        await index(a, back)
        pull(a, b)
        new_harbour = entry_at(a, str(folder / "harbour.jpg"))
        assert new_harbour != old_harbour
        with a.write() as db:
            a.sync.record(db, "note", target=f"e:{alpha.device.id}:{old_harbour}", value="alpha, by its old id")
        metadata.set_note(a, new_harbour, "alpha")
        time.sleep(0.01)  # (a later millisecond: beta's note is the latest)
        metadata.set_note(b, betas_harbour, "beta")
        tags.remove(b, "sea", [betas_harbour])
        for _ in range(4):
            pull(a, b)
            pull(b, a)
        settled = (signed_here(a), signed_here(b))
        for _ in range(3):
            pull(a, b)
            pull(b, a)
        assert (signed_here(a), signed_here(b)) == settled and a.sync.digest() == b.sync.digest()
        assert metadata.note(a, new_harbour) == metadata.note(b, betas_harbour) == "beta"  # (the latest)


async def test_ops_of_a_device_that_is_no_member_on_the_owners_ids_make_this_device_sign_nothing(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    """gamma, a device no library here counts as a member (a member may relay the ops of up to 128 made-up ones),
    notes, marks and tags the disk's files by alpha's ids: beta takes its ops (as any stranger's, in their quota)
    but says nothing again of its own, which would be signed by beta and count against beta's quota on the others."""
    async with taken_over(alpha, beta, tmp_path) as (folder, _house), Core(device(tmp_path / "gamma", "gamma")) as gamma:
        a, b, g = alpha.library(), beta.library(), gamma.library()
        before = signed_here(b)
        tags.create(g, "sea")
        with g.write() as db:
            uid = g.sync.uid_of(db, tags.get(g, "sea").id)
            for name in NAMES:
                target = f"e:{alpha.device.id}:{entry_at(a, str(folder / name))}"
                g.sync.record(db, "note", target=target, value="from a stranger")
                g.sync.record(db, "fav", target=target, value=True)
                g.sync.tag(db, uid, [target])
        assert pull(b, g) > 0
        assert signed_here(b) == before
        assert [metadata.note(b, entry_at(b, str(folder / n), beta.device.id)) for n in NAMES] == [None, None]
