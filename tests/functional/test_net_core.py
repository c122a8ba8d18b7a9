"""The network inside Core: `laptop:/path` resolves to a paired device and browses through RemoteFS."""

from __future__ import annotations

import os
from pathlib import Path

from sdcore.core import Core
from sdcore.net import RemoteFS, attach
from sdcore.net.testing import pair


async def test_a_paired_device_path_browses_through_the_core(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    async with Core(tmp_path / "a") as laptop, Core(tmp_path / "b") as desk:
        laptop.device.rename("laptop")
        desk.device.rename("desk")
        await attach(laptop).start("127.0.0.1:0")
        await pair(attach(laptop), attach(desk))

        path = desk.resolve(f"laptop:{tmp_path / 'photos'}")
        assert path.device_id == laptop.device.id and not desk.is_local(path)
        assert isinstance(desk.fs_for(path.device_id), RemoteFS)
        names = [e.name async for batch in desk.browse(path) for e in batch]
        assert names == ["cat.jpg"]
        data = b"".join([c async for c in desk.fs_for(path.device_id).open_read(path.child("cat.jpg").path)])
        assert data == b"meow"
    # closing the cores closed their networks (no server left listening)
    assert laptop.network._server is None


async def test_pair_and_copy_a_folder_both_ways_as_jobs(tmp_path: Path) -> None:
    from sdcore import ops

    src = tmp_path / "album"
    (src / "sub").mkdir(parents=True)
    (src / "a.jpg").write_bytes(os.urandom(3 * 1024 * 1024 + 1))
    (src / "sub" / "b.txt").write_text("b")
    async with Core(tmp_path / "a") as laptop, Core(tmp_path / "b") as desk:
        laptop.device.rename("laptop")
        desk.device.rename("desk")
        await attach(laptop).start("127.0.0.1:0")
        await attach(desk).start("127.0.0.1:0")
        await pair(attach(laptop), attach(desk))
        (tmp_path / "pulled").mkdir()
        (tmp_path / "pushed").mkdir()

        # desk pulls laptop:/album, then pushes it back to laptop:/pushed
        library = desk.library()
        job = await ops.copy(
            library, [desk.resolve(f"laptop:{src}")], desk.resolve(str(tmp_path / "pulled")), verify=True
        )
        assert (await library.jobs.wait(job)).state == "completed"
        job = await ops.copy(
            library,
            [desk.resolve(str(tmp_path / "pulled" / "album"))],
            desk.resolve(f"laptop:{tmp_path / 'pushed'}"),
        )
        assert (await library.jobs.wait(job)).state == "completed"
    for copy in (tmp_path / "pulled" / "album", tmp_path / "pushed" / "album"):
        assert (copy / "a.jpg").read_bytes() == (src / "a.jpg").read_bytes()
        assert (copy / "sub" / "b.txt").read_text() == "b"
