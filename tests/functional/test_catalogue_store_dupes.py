"""`sd dupes --devices` (sdcore.dedup.across_devices) over other devices' catalogues kept as files of their own: their
copies are read from the files by cas_number, named by global ids, and held by the sampled cas_id only until their
device hashes them; rows of a kept device that the library's own tables still hold are never read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcore import dedup
from sdcore.api.library import _owner_ids
from sdcore.library import Library
from sdcore.library.context import LibraryContext
from sdcore.library.library import create_folder
from sdcore.sync.catalogue_file import make
from sdcore.sync.catalogue_store import global_id, keep, slot_of, staging_path
from tests.functional.test_catalogue import sync
from tests.functional.test_catalogue_file import indexed, make_home
from tests.functional.test_catalogue_store import receiver  # noqa: F401  (a fixture)

SNOW = b"\xff\xd8\xff" + b"snow" * 100  # winter.jpg's content in make_home


@pytest.fixture
def beta(tmp_path: Path) -> Iterator[Library]:
    """A third device's library of the same name (its own device id)."""
    other = Library(create_folder(tmp_path / "beta", "Shared"), LibraryContext.this_device_only(uuid.uuid4()))
    yield other
    other.close()


def kept_after_sync(owner: Library, into: Library) -> int:
    """The owner's catalogue synced into `into`'s tables (its locations), then kept as a file; its slot."""
    sync(owner, into)
    device = owner.context.device_id
    make(owner, staging_path(into, device))
    keep(into, device)
    slot = slot_of(into, device)
    assert slot is not None
    return slot


def drop_entries_of(library: Library, device: uuid.UUID) -> None:
    """The entries of `device` that `library`'s own tables hold, gone (its locations stay), as migration 35 leaves it."""
    with library.write() as db:
        theirs = "SELECT id FROM locations WHERE device_id = ?"
        db.execute(f"DELETE FROM catalogue_entries WHERE entry_id IN (SELECT id FROM entries WHERE location_id IN ({theirs}))",
                   (str(device),))  # fmt: skip
        db.execute(f"DELETE FROM directory_paths WHERE location_id IN ({theirs})", (str(device),))
        db.execute(f"DELETE FROM entries WHERE location_id IN ({theirs})", (str(device),))


async def test_copies_on_devices_whose_catalogues_are_kept_are_found_in_their_files_by_global_id(
    library: Library, receiver: Library, beta: Library, tmp_path: Path  # noqa: F811
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "snow.jpg").write_bytes(SNOW)
    (mine / "only-here.txt").write_bytes(b"nowhere else" * 50)
    await indexed(receiver, mine)
    alpha_home, beta_home = make_home(tmp_path / "alpha-home"), make_home(tmp_path / "beta-home")
    await indexed(library, alpha_home)
    await indexed(beta, beta_home)
    alpha, b, here = library.context.device_id, beta.context.device_id, receiver.context.device_id
    sync(library, receiver)  # alpha's rows in the library's tables, older than its file: winter.jpg, since renamed
    (alpha_home / "photos" / "2024" / "winter.jpg").rename(alpha_home / "photos" / "2024" / "frost.jpg")
    await indexed(library, alpha_home)
    alpha_slot = kept_after_sync(library, receiver)
    beta_slot = kept_after_sync(beta, receiver)
    drop_entries_of(receiver, b)  # beta's entries in its file only

    groups = dedup.across_devices(receiver, min_size=100)
    assert sorted((g.size, len(g.copies)) for g in groups) == [(403, 2), (403, 5)]  # Beach.JPG, and snow (on 3 devices)
    snow = next(g for g in groups if any(c.device_id == here for c in g.copies))
    assert {(c.device_id, c.path) for c in snow.copies} == {
        (alpha, str(alpha_home / "photos" / "2024" / "frost.jpg")),  # (the library's own rows of alpha say winter.jpg)
        (alpha, str(alpha_home / "photos" / "copy of winter.jpg")),
        (b, str(beta_home / "photos" / "2024" / "winter.jpg")),
        (b, str(beta_home / "photos" / "copy of winter.jpg")),
        (here, str(mine / "snow.jpg")),
    }
    owners = {alpha: (library, alpha_slot), b: (beta, beta_slot)}
    for c in snow.copies:
        if c.device_id in owners:
            owner, slot = owners[c.device_id]
            (owners_id,) = owner.read().execute(
                "SELECT e.id FROM entries e JOIN directory_paths p ON p.entry_id = e.parent_id"
                " WHERE p.path || '/' || e.name = ?", (c.path.split("-home/", 1)[1],)
            ).fetchone()  # fmt: skip
            assert c.entry_id == global_id(slot, owners_id)
            assert _owner_ids(receiver, [c.entry_id]) == {c.entry_id: owners_id}  # what its device is asked to hash
    # labelled as before: held by the sampled cas_id only until each device hashes its own copies
    assert not snow.proven and snow.offline == tuple(sorted((alpha, b, here)))
    unproven = dedup.proven_by(groups, {}, {alpha, b})
    assert {c.device_id for g in unproven for c in g.copies} == {alpha, b} and not any(g.proven for g in unproven)

    every = dedup.across_devices(receiver)
    assert len(every) == 7  # each content of a home, on alpha and beta (snow also here)
    assert all({c.device_id for c in g.copies} >= {alpha, b} for g in every)
