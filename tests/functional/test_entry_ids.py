"""Shared data names an entry by its device and that device's id for it: an id once deleted is never given again,
or a new file would take the tags and notes of the one deleted before it (here, and on every device it syncs to)."""

from __future__ import annotations

from pathlib import Path

from sdcore.api import Api
from sdcore.core import Core
from sdcore.index.indexer import index_location
from sdcore.sdpath import SdPath


async def test_a_new_file_never_takes_the_id_and_so_the_tag_of_a_deleted_one(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "zz-secret.txt").write_text("the last entry made: the highest id")
    async with Core(tmp_path / "data") as core:
        library = core.library()
        location = library.locations.add(str(folder))
        await library.jobs.wait(await index_location(library, location))
        api = Api(core).library()
        secret = SdPath(core.device.id, str(folder / "zz-secret.txt"))
        await api.tags.create("private")
        await api.tags["private"].add(secret)
        old_id = (await api.entries.at(secret)).entry_id

        (folder / "zz-secret.txt").unlink()
        await library.jobs.wait(await index_location(library, location))
        (folder / "zz-public.txt").write_text("made after the delete")
        await library.jobs.wait(await index_location(library, location))
        public = SdPath(core.device.id, str(folder / "zz-public.txt"))
        new_id = (await api.entries.at(public)).entry_id
        assert new_id is not None and old_id is not None and new_id > old_id
        assert library.sync.target_of(library.read(), new_id) != f"e:{core.device.id}:{old_id}"
        assert [t.path.path for t in await api.tags["private"].files()] == []
        # a new location's root entry neither
        (tmp_path / "more").mkdir()
        assert library.locations.add(str(tmp_path / "more")).root_id > old_id
