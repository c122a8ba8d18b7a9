"""Archives as folders: browsed like a folder, their members copied out (unpacked) byte for byte, and hostile
archives (members named `../evil` or `/abs`, links, bombs) refused before anything is written."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.core import Core
from sdcore.errors import SdError
from sdcore.sdpath import SdPath


def at(api: Api, path: Path | str) -> SdPath:
    return SdPath(api.device.id, str(path))


def a_tree(root: Path) -> Path:
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "docs" / "readme.txt").write_text("read me\n")
    (root / "docs" / "deep" / "data.bin").write_bytes(os.urandom(300_000))
    (root / "top.txt").write_text("top\n")
    return root


def zipped(tree: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(tree.rglob("*")):
            zf.write(path, path.relative_to(tree).as_posix())
    return archive


def tarred(tree: Path, archive: Path, mode: str = "w:xz") -> Path:
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") if archive.name.endswith(".zst") else tarfile.open(archive, mode) as tf:
        for path in sorted(tree.iterdir()):
            tf.add(path, path.name)
    if archive.name.endswith(".zst"):
        import zstandard

        archive.write_bytes(zstandard.ZstdCompressor().compress(plain.getvalue()))
    return archive


async def names(api: Api, path: SdPath) -> list[tuple[str, str]]:
    return sorted([(e.name, e.kind) async for batch in api.browse(path) for e in batch])


def same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*"))
    for rel in files_a:
        if (a / rel).is_file():
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


@pytest.fixture
async def api(tmp_path: Path) -> Api:
    async with Core(tmp_path / "data") as core:
        yield Api(core)


@pytest.mark.parametrize("kind", ["zip", "tar.xz", "tar.zst"])
async def test_an_archive_is_browsed_as_a_folder_and_unpacked_byte_identical(api: Api, tmp_path: Path, kind: str) -> None:
    tree = a_tree(tmp_path / "tree")
    archive = tmp_path / f"pack.{kind}"
    zipped(tree, archive) if kind == "zip" else tarred(tree, archive)
    assert await names(api, at(api, archive)) == [("docs", "dir"), ("top.txt", "file")]
    assert await names(api, at(api, archive / "docs")) == [("deep", "dir"), ("readme.txt", "file")]
    readme = await api.stat(at(api, archive / "docs" / "readme.txt"))
    assert (readme.kind, readme.size) == ("file", 8)
    assert b"".join([c async for c in api.read(at(api, archive / "docs" / "readme.txt"))]) == b"read me\n"

    out = tmp_path / "out"
    out.mkdir()
    job = await api.ops.copy([at(api, archive / "docs"), at(api, archive / "top.txt")], at(api, out))
    record = await api.library().jobs.wait(job.id)
    assert record.state == "completed", record.error
    assert (record.result.files, record.result.total_bytes) == (3, 300_000 + 8 + 4)
    same_tree(tree, out)


@pytest.mark.parametrize("kind", ["zip", "tar.xz"])
async def test_unpacked_files_keep_their_permissions_and_dates_as_tar_and_unzip_leave_them(
    api: Api, tmp_path: Path, kind: str
) -> None:
    """F5 on a member of a .tar.gz in the explorer wrote it rw------- and dated now (the archive said rw-r--r--,
    and a script rwxr-xr-x lost its x): the file was left as its temporary file was made."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "notes.txt").write_text("notes\n")
    (tree / "run.sh").chmod(0o4755)  # setuid is never given back
    (tree / "notes.txt").chmod(0o644)
    for name in ("run.sh", "notes.txt"):
        os.utime(tree / name, (1_600_000_000, 1_600_000_000))
    archive = tmp_path / f"pack.{kind}"
    zipped(tree, archive) if kind == "zip" else tarred(tree, archive)
    if kind == "zip":  # a member from Windows: no permissions kept
        with zipfile.ZipFile(archive, "a") as zf:
            member = zipfile.ZipInfo("windows.txt", (2020, 1, 2, 3, 4, 6))
            member.create_system, member.external_attr = 0, 0x20  # MS-DOS, its "archive" bit alone
            zf.writestr(member, "w")
    out = tmp_path / "out"
    out.mkdir()
    names = ("run.sh", "notes.txt", "windows.txt") if kind == "zip" else ("run.sh", "notes.txt")
    members = [at(api, archive / n) for n in names]
    record = await api.library().jobs.wait((await api.ops.copy(members, at(api, out))).id)
    assert record.state == "completed", record.error
    assert oct((out / "run.sh").stat().st_mode & 0o7777) == oct(0o755)
    assert oct((out / "notes.txt").stat().st_mode & 0o7777) == oct(0o644)
    assert int((out / "notes.txt").stat().st_mtime) == 1_600_000_000
    if kind == "zip":
        assert oct((out / "windows.txt").stat().st_mode & 0o7777) == oct(0o644)


async def test_an_archive_is_read_only(api: Api, tmp_path: Path) -> None:
    archive = zipped(a_tree(tmp_path / "tree"), tmp_path / "pack.zip")
    with pytest.raises(SdError, match="inside an archive, which is read-only"):
        await api.ops.copy([at(api, tmp_path / "tree" / "top.txt")], at(api, archive / "docs"))
    with pytest.raises(SdError, match="read-only"):
        await api.ops.trash([at(api, archive / "top.txt")])
    with pytest.raises(SdError, match="read-only"):
        await api.ops.move([at(api, archive / "top.txt")], at(api, tmp_path))


def hostile_zip(path: Path, member: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fine.txt", "fine")
        zf.writestr(member, "evil")
    return path


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt"])
async def test_a_member_named_to_land_outside_is_refused_and_nothing_is_written(
    api: Api, tmp_path: Path, member: str
) -> None:
    archive = hostile_zip(tmp_path / "hostile.zip", member)
    out = tmp_path / "box" / "out"
    out.mkdir(parents=True)
    assert await names(api, at(api, archive)) == [("fine.txt", "file")]  # browsing shows what is safe
    with pytest.raises(SdError, match=r"would land outside the folder it is unpacked to: nothing unpacked"):
        await api.ops.copy([at(api, archive / "fine.txt")], at(api, out))
    assert list(out.iterdir()) == [] and not (tmp_path / "box" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()


async def test_link_and_device_members_are_left_out_never_made(api: Api, tmp_path: Path) -> None:
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tf:
        link = tarfile.TarInfo("pack/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
        hard = tarfile.TarInfo("pack/shadow")
        hard.type, hard.linkname = tarfile.LNKTYPE, "/etc/shadow"
        tf.addfile(hard)
        dev = tarfile.TarInfo("pack/sda")
        dev.type, dev.devmajor = tarfile.BLKTYPE, 8
        tf.addfile(dev)
        data = b"plain"
        plain = tarfile.TarInfo("pack/plain.txt")
        plain.size = len(data)
        tf.addfile(plain, io.BytesIO(data))
        through = tarfile.TarInfo("pack/passwd/evil")  # written through the link by a naive unpacker
        through.size = 4
        tf.addfile(through, io.BytesIO(b"evil"))
    assert await names(api, at(api, archive / "pack")) == [
        ("passwd", "symlink"), ("plain.txt", "file"), ("sda", "device"), ("shadow", "symlink")]
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SdError, match=r"'pack/passwd/evil' \(it goes through the symlink 'passwd'\)"):
        await api.ops.copy([at(api, archive / "pack")], at(api, out))
    assert list(out.iterdir()) == []


async def test_links_alone_are_left_out_and_said(api: Api, tmp_path: Path) -> None:
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        link = tarfile.TarInfo("pack/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
        plain = tarfile.TarInfo("pack/plain.txt")
        plain.size = 5
        tf.addfile(plain, io.BytesIO(b"plain"))
    out = tmp_path / "out"
    out.mkdir()
    record = await api.library().jobs.wait((await api.ops.copy([at(api, archive / "pack")], at(api, out))).id)
    assert record.state == "completed", record.error
    assert sorted(os.listdir(out / "pack")) == ["plain.txt"]
    assert record.result.unsupported == (f"{archive}/pack/passwd (a symlink)",)


async def test_a_zip_bomb_is_refused_with_its_ratio_and_nothing_is_written(api: Api, tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("zeros.bin", "w", force_zip64=True) as member:
            block = bytes(4 << 20)
            for _ in range(60):  # 240 MiB of zeros: about 1 MiB packed
                member.write(block)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SdError, match=r"times its size; sdtui opens archives up to 200 times their size and 8 GiB"):
        await api.ops.copy([at(api, archive / "zeros.bin")], at(api, out))
    assert list(out.iterdir()) == []


def test_sd_ls_and_sd_cp_take_archive_paths(tmp_path: Path) -> None:
    tree = a_tree(tmp_path / "tree")
    archive = tarred(tree, tmp_path / "pack.tar.gz", "w:gz")
    env = {**os.environ, "SD_DATA_DIR": str(tmp_path / "data")}
    ls = subprocess.run([sys.executable, "-m", "sdtui.cli", "ls", f"{archive}/docs"], env=env, text=True,
                        capture_output=True, timeout=60)  # fmt: skip
    assert ls.returncode == 0, ls.stderr
    assert "readme.txt" in ls.stdout and "deep/" in ls.stdout
    cp = subprocess.run([sys.executable, "-m", "sdtui.cli", "cp", f"{archive}/docs/readme.txt", str(tmp_path / "r.txt")],
                        env=env, text=True, capture_output=True, timeout=60)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "r.txt").read_text() == "read me\n"


async def test_a_paired_devices_archive_is_listed_and_read_by_its_core(tmp_path: Path) -> None:
    from sdcore import net
    from sdcore.net.testing import pair

    tree = a_tree(tmp_path / "tree")
    archive = zipped(tree, tmp_path / "on-nas.zip")
    async with Core(tmp_path / "a") as laptop, Core(tmp_path / "b") as nas:
        nas.device.rename("nas")
        await net.attach(nas).start("127.0.0.1:0")
        await pair(net.attach(nas), net.attach(laptop))
        api = Api(laptop)
        there = SdPath(nas.device.id, str(archive))
        assert await names(api, there) == [("docs", "dir"), ("top.txt", "file")]
        assert (await api.stat(there.child("top.txt"))).size == 4
        assert b"".join([c async for c in api.read(there.child("docs").child("readme.txt"))]) == b"read me\n"
        with pytest.raises(SdError, match="inside an archive on another device, which unpacks it there"):
            await api.ops.copy([there.child("top.txt")], at(api, tmp_path))


async def test_browsing_a_paired_devices_archives_for_long_leaves_no_session_of_its_core_open(tmp_path: Path) -> None:
    from sdcore import net
    from sdcore.net.testing import pair

    archive = zipped(a_tree(tmp_path / "tree"), tmp_path / "on-nas.zip")
    async with Core(tmp_path / "a") as laptop, Core(tmp_path / "b") as nas:
        await net.attach(nas).start("127.0.0.1:0")
        await pair(net.attach(nas), net.attach(laptop))
        api, there = Api(laptop), SdPath(nas.device.id, str(archive))
        readme = there.child("docs").child("readme.txt")
        for _ in range(40):  # more than the 32 sessions the nas allows a key at once: an explorer open for a day
            assert await names(api, there) == [("docs", "dir"), ("top.txt", "file")]
            assert (await api.stat(there.child("top.txt"))).size == 4
            assert b"".join([c async for c in api.read(readme)]) == b"read me\n"
            async for _chunk in api.read(readme):  # a preview's first bytes, and on to the next file
                break
            async for _batch in api.browse(there, 1):
                break
        sessions = lambda: sum(len(c._sessions) for c in net.attach(nas)._incoming)  # noqa: E731
        async with asyncio.timeout(10):
            while sessions() > 1:  # (the laptop's RPC session stays)
                await asyncio.sleep(0.05)


async def test_an_archive_of_too_many_members_is_not_opened(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.fs import archive as archive_module

    monkeypatch.setattr(archive_module, "MAX_MEMBERS", 2)
    crowded = tmp_path / "crowded.zip"
    with zipfile.ZipFile(crowded, "w") as zf:
        for name in ("a", "b", "c"):
            zf.writestr(name, name)
    with pytest.raises(SdError, match=r"crowded.zip cannot be read as an archive: it holds 3 members .* more than 2"):
        await names(api, at(api, crowded))
    tarred_crowd = tmp_path / "crowded.tar"
    with tarfile.open(tarred_crowd, "w") as tf:
        for name in ("a", "b", "c"):
            tf.addfile(tarfile.TarInfo(name))
    with pytest.raises(SdError, match=r"crowded.tar holds more than 2 members"):
        await names(api, at(api, tarred_crowd))


async def test_a_member_cannot_be_tagged_noted_or_made_a_location(api: Api, tmp_path: Path) -> None:
    archive = zipped(a_tree(tmp_path / "tree"), tmp_path / "pack.zip")
    member = at(api, archive / "top.txt")
    for attempt in (api.library().tags["work"].add(member), api.library().notes.set(member, "hello"),
                    api.library().entries.make_known(member)):  # fmt: skip
        with pytest.raises(SdError, match=r"pack.zip/top.txt is inside an archive: unpack it first \(F5, sd cp\)"):
            await attempt


async def test_an_archive_of_a_device_sharing_only_its_files_says_where_it_opens(tmp_path: Path) -> None:
    from sdcore import net
    from sdcore.net.testing import pair

    shared = tmp_path / "shared"
    shared.mkdir()
    archive = zipped(a_tree(tmp_path / "tree"), shared / "pack.zip")
    async with Core(tmp_path / "a") as laptop, Core(tmp_path / "b") as nas:
        await net.attach(nas).start("127.0.0.1:0")
        await pair(net.attach(nas), net.attach(laptop), host_trust="shared")
        net.attach(nas).trust.add_share(str(shared))
        api = Api(laptop)
        there = SdPath(nas.device.id, str(archive))
        assert (await api.stat(there)).kind == "file"  # the archive itself: a file like any other
        with pytest.raises(SdError, match="pack.zip is an archive of a device that lets this one use its files, not"):
            await names(api, there)


async def test_disk_usage_inside_an_archive_sums_its_folders(api: Api, tmp_path: Path) -> None:
    archive = zipped(a_tree(tmp_path / "tree"), tmp_path / "pack.zip")
    sizes = {}
    async for batch in api.usage(at(api, archive)):
        sizes.update({e.name: (e.size, e.files) for e in batch})
    assert sizes == {"docs": (300_008, 2), "top.txt": (4, None)}


async def test_unpacking_to_a_fat_disk_fits_the_names_it_cannot_hold(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The names are the archive's, the disk's limits the core's (a FAT mount stood in for: its limits at the folder)."""
    import importlib

    from sdcore.volumes import LIMITS

    monkeypatch.setattr(importlib.import_module("sdcore.ops.extract"), "limits_at", lambda path: LIMITS["vfat"])
    archive = tmp_path / "names.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pack/a:b.txt", "colon")
        zf.writestr("pack/plain.txt", "plain")
    out = tmp_path / "usb"
    out.mkdir()
    with pytest.raises(SdError, match=r"FAT or exFAT disk cannot hold 1 of the names unpacked.*pack/a:b.txt"):
        await api.ops.copy([at(api, archive / "pack")], at(api, out))
    assert list(out.iterdir()) == []
    job = await api.ops.copy([at(api, archive / "pack")], at(api, out), unfit_names="rename")
    assert (await api.library().jobs.wait(job.id)).state == "completed"
    assert sorted(os.listdir(out / "pack")) == ["a_b.txt", "plain.txt"]


async def test_a_tar_made_of_a_folders_dot_lists_its_members_without_a_dot_folder(api: Api, tmp_path: Path) -> None:
    tree = a_tree(tmp_path / "tree")
    archive = tmp_path / "dot.tar"
    with tarfile.open(archive, "w") as tf:  # as `tar -C tree -cf dot.tar .` writes it: ./, ./docs/, ./top.txt
        tf.add(tree, ".")
    assert await names(api, at(api, archive)) == [("docs", "dir"), ("top.txt", "file")]
    out = tmp_path / "out"
    out.mkdir()
    job = await api.ops.copy([at(api, archive / "docs"), at(api, archive / "top.txt")], at(api, out))
    assert (await api.library().jobs.wait(job.id)).state == "completed"
    same_tree(tree, out)


async def test_a_paired_device_whose_archive_lists_without_end_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore import net
    from sdcore.fs import archive as archive_module
    from sdcore.fs import base
    from sdcore.fs.base import EntryInfo
    from sdcore.net.testing import pair

    async def endless(self: object, path: str, batch_size: int = 1000) -> object:
        n = 0
        while True:  # the other device's core, hostile: members that never run out
            yield [EntryInfo(f"m{i}", "file", 1, 0.0, 0, 0o100644) for i in range(n, n + batch_size)]
            n += batch_size
            await asyncio.sleep(0)  # another process, in truth: this one's loop goes on meanwhile

    archive = zipped(a_tree(tmp_path / "tree"), tmp_path / "on-nas.zip")
    async with Core(tmp_path / "a") as laptop, Core(tmp_path / "b") as nas:
        await net.attach(nas).start("127.0.0.1:0")
        await pair(net.attach(nas), net.attach(laptop))
        monkeypatch.setattr(archive_module.ArchiveFS, "list_dir", endless)
        monkeypatch.setattr(base, "MAX_LISTED", 5_000)
        got = 0
        with pytest.raises(SdError, match=r"the other device listed more than 5,000 entries in .*on-nas.zip"):
            async for batch in Api(laptop).browse(SdPath(nas.device.id, str(archive))):
                got += len(batch)
                if got > 50_000:
                    pytest.fail("the endless listing was taken on and on")


async def test_a_member_nested_five_thousand_folders_deep_is_listed(api: Api, tmp_path: Path) -> None:
    archive = tmp_path / "deep.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/" * 5000 + "f.txt", "at the bottom")
    assert await names(api, at(api, archive)) == [("a", "dir")]
    assert await names(api, at(api, archive / "/".join(["a"] * 5000))) == [("f.txt", "file")]


def many_members_tar(path: Path, count: int, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for i in range(count):
            info = tarfile.TarInfo(f"dir/file{i:06d}.txt")
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    return path


def test_a_tar_of_many_members_is_indexed_in_little_memory(tmp_path: Path) -> None:
    """tarfile keeps a TarInfo of every member (~760 bytes each: 100,000 members of a 0.9 MB .tar.gz took 76 MB);
    the index keeps a few numbers a member (and reads a member again from its header's offset)."""
    import gc
    import tracemalloc

    from sdcore.fs import archive

    pack = many_members_tar(tmp_path / "many.tar.gz", 5_000)
    archive._cache.clear()
    gc.collect()
    tracemalloc.start()
    try:
        idx = archive.index(str(pack))
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(idx.folder("/dir")) == 5_000
    assert kept / 5_000 < 300, f"{kept / 5_000:.0f} bytes a member"
    assert kept / 2 < idx.cost < kept * 2  # what the cache's bound counts
    assert b"".join(archive.read_member(idx, "/dir/file004999.txt")) == b"x"


async def test_a_glance_at_an_archive_reads_no_further_than_it_shows(api: Api, tmp_path: Path) -> None:
    """The inspector's preview of an archive reads its first members only: a tar cut short after them still
    previews (it says there is more), while opening it reads on and says it is damaged."""
    from sdcore.fs import archive

    pack = many_members_tar(tmp_path / "cut.tar", 3_000, "w")
    pack.write_bytes(pack.read_bytes()[: 512 * 2 * 2_000 + 600])  # a header and a block a member: cut in the 2,001st
    archive._cache.clear()
    entries, complete = await api.peek(at(api, pack / "dir"), 500)
    assert (len(entries), complete) == (500, False)
    assert archive._cache == {}  # a glance is not kept as the archive's index
    entries, complete = await api.peek(at(api, pack), 500)
    assert ([e.name for e in entries], complete) == (["dir"], False)
    with pytest.raises(SdError, match="cannot be read as an archive"):
        await names(api, at(api, pack / "dir"))
    small = tarred(a_tree(tmp_path / "tree"), tmp_path / "small.tar.gz", "w:gz")
    entries, complete = await api.peek(at(api, small), 500)
    assert (sorted(e.name for e in entries), complete) == (["docs", "top.txt"], True)


def gzipped_tar_bomb(path: Path, declared: int, written: int) -> Path:
    """A .tar.gz whose one member declares `declared` bytes of zeros, `written` of them in it."""
    import zlib

    info = tarfile.TarInfo("zeros.bin")
    info.size = declared
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(path, "wb") as f:
        f.write(packer.compress(info.tobuf()))
        block = bytes(4 << 20)
        for _ in range(written // len(block)):
            f.write(packer.compress(block))
        f.write(packer.flush())
    return path


async def test_a_tar_bomb_is_refused_at_its_header_before_it_is_unpacked(api: Api, tmp_path: Path) -> None:
    """A member declaring more than 200 times the archive's size is refused as its header is read: listing it used
    to unpack all of it (here 300 MiB of zeros from 0.3 MB) to find what comes after."""
    import time

    bomb = gzipped_tar_bomb(tmp_path / "bomb.tar.gz", 300 << 20, 300 << 20)
    started = time.process_time()
    with pytest.raises(SdError, match="would unpack to more than 314,573,312 bytes from .* times its size"):
        await names(api, at(api, bomb))
    assert time.process_time() - started < 0.5  # unpacking the 300 MiB takes about a second


async def test_a_tar_header_declaring_a_huge_name_is_refused_before_it_is_read(api: Api, tmp_path: Path) -> None:
    """tarfile reads a long-name or pax header whole into memory: one may declare gigabytes in a few bytes."""
    import zlib

    header = tarfile.TarInfo("././@LongLink")
    header.type = tarfile.GNUTYPE_LONGNAME
    header.size = 3 << 30
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    (tmp_path / "long.tar.gz").write_bytes(packer.compress(header.tobuf(format=tarfile.GNU_FORMAT)) + packer.flush())
    with pytest.raises(SdError, match=r"a header declares 3,221,225,472 bytes of name or attributes"):
        await names(api, at(api, tmp_path / "long.tar.gz"))


def test_the_archives_kept_read_fit_in_a_bounded_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sdcore.fs import archive

    first = many_members_tar(tmp_path / "first.tar", 2_000, "w")
    second = many_members_tar(tmp_path / "second.tar", 2_000, "w")
    archive._cache.clear()
    cost = archive.index(str(first)).cost
    monkeypatch.setattr(archive, "MAX_CACHED_BYTES", cost + cost // 2)
    archive.index(str(second))
    assert [key[0] for key in archive._cache] == [str(second)]  # the first would pass the bound: dropped
    archive.index(str(first))
    assert [key[0] for key in archive._cache] == [str(first)]


SEVEN_ZIP = next((p for p in ("7zz", "7z", "7za", "7zr") if shutil.which(p)), None)


@pytest.mark.skipif(SEVEN_ZIP is None, reason="7-Zip is not installed (apt-get install 7zip)")
async def test_a_7z_is_browsed_as_a_folder_and_unpacked_byte_identical(api: Api, tmp_path: Path) -> None:
    tree = a_tree(tmp_path / "tree")
    (tree / "-dash @at *star?.txt").write_text("odd name\n")
    (tree / "docs" / "link").symlink_to("readme.txt")
    pack = tmp_path / "pack.7z"
    subprocess.run([str(SEVEN_ZIP), "a", "-snl", "-bd", str(pack), "."], cwd=tree, check=True, capture_output=True)
    assert await names(api, at(api, pack)) == [("-dash @at *star?.txt", "file"), ("docs", "dir"), ("top.txt", "file")]
    assert await names(api, at(api, pack / "docs")) == [("deep", "dir"), ("link", "symlink"), ("readme.txt", "file")]
    assert (await api.stat(at(api, pack / "docs" / "deep" / "data.bin"))).size == 300_000
    out = tmp_path / "out"
    out.mkdir()
    sources = [at(api, pack / name) for name in ("docs", "top.txt", "-dash @at *star?.txt")]
    record = await api.library().jobs.wait((await api.ops.copy(sources, at(api, out))).id)
    assert record.state == "completed", record.error
    (tree / "docs" / "link").unlink()  # links are left out, never made
    same_tree(tree, out)


async def test_without_7zip_a_7z_says_what_to_install(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "box").mkdir()
    pack = tmp_path / "box" / "pack.7z"
    pack.write_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(26))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(SdError, match=r"7z archives open with 7-Zip, which is not installed here: install it \(the 7zip"):
        await names(api, at(api, pack))
    entries, _ = await api.peek(at(api, tmp_path / "box"), 10)
    assert [e.name for e in entries] == ["pack.7z"]


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_zip_member_is_read_from_its_own_header_its_crc_checked(tmp_path: Path, method: int) -> None:
    """One member of a zip of 10,000 is read without zipfile's object of every member (100,000 took half a second
    and 60 MB for the first member read); zip64 sizes and every method zipfile knows; a changed byte is caught."""
    import tracemalloc

    from sdcore.fs import archive

    pack = tmp_path / "many.zip"
    data = os.urandom(50_000) + bytes(50_000)
    with zipfile.ZipFile(pack, "w", method) as zf:
        for i in range(10_000):
            zf.writestr(f"dir/file{i:05d}.txt", b"x", zipfile.ZIP_STORED)
        with zf.open("big/data.bin", "w", force_zip64=True) as member:
            member.write(data)
    idx = archive.index(str(pack))
    tracemalloc.start()
    try:
        assert b"".join(archive.read_member(idx, "/big/data.bin")) == data
        if method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):  # (bzip2's and lzma's decoders take megabytes)
            assert tracemalloc.get_traced_memory()[1] < 2 << 20  # zipfile's directory of 10,000 members: ~7 MB
    finally:
        tracemalloc.stop()
    assert b"".join(archive.read_member(idx, "/dir/file09999.txt")) == b"x"
    if method == zipfile.ZIP_STORED:
        spoiled = bytearray(pack.read_bytes())
        at = spoiled.find(data[:64])
        spoiled[at + 10] ^= 1
        pack.write_bytes(bytes(spoiled))
        with pytest.raises(SdError, match="Bad CRC-32"):
            b"".join(archive.read_member(archive.index(str(pack)), "/big/data.bin"))


async def test_an_archive_under_one_top_folder_shows_it_before_the_rest_is_read(api: Api, tmp_path: Path) -> None:
    """Most archives hold one folder (`project-1.0/...`): it shows once the first members are read, not after all of
    them (100,000 members took half a second); here the last is damaged, and the folder was shown before."""
    from sdcore.fs import archive

    pack = tmp_path / "project.zip"
    with zipfile.ZipFile(pack, "w") as zf:
        for i in range(3_000):
            zf.writestr(f"project-1.0/file{i:04d}.txt", b"x")
    data = bytearray(pack.read_bytes())
    last = data.rfind(b"PK\x01\x02")
    data[last : last + 2] = b"XX"
    pack.write_bytes(bytes(data))
    archive._cache.clear()
    shown: list[str] = []
    with pytest.raises(SdError, match="a damaged central directory"):
        async for batch in api.browse(at(api, pack)):
            shown.extend(e.name for e in batch)
    assert shown == ["project-1.0"]


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_zip_member_whose_packed_bytes_are_garbage_is_an_archive_error(tmp_path: Path, method: int) -> None:
    """zlib and lzma say a damaged stream with errors of their own (neither an OSError nor a ValueError): a preview
    or a copy of such a member got them raw, not the SdError it catches."""
    from sdcore.fs import archive

    pack = tmp_path / "damaged.zip"
    data = os.urandom(20_000)
    with zipfile.ZipFile(pack, "w", method) as zf:
        zf.writestr("data.bin", data)
    spoiled = bytearray(pack.read_bytes())
    header = spoiled.find(b"PK\x03\x04") + 30 + len("data.bin")
    spoiled[header : header + 200] = os.urandom(200) if method != zipfile.ZIP_DEFLATED else b"\xff" * 200
    pack.write_bytes(bytes(spoiled))
    with pytest.raises(SdError, match="damaged.zip/data.bin cannot be read"):
        b"".join(archive.read_member(archive.index(str(pack)), "/data.bin"))


def test_a_damaged_tar_xz_is_an_archive_error(tmp_path: Path) -> None:
    from sdcore.fs import archive

    pack = tmp_path / "damaged.tar.xz"
    with tarfile.open(pack, "w:xz") as tf:
        for i in range(20):
            data = os.urandom(5000)
            info = tarfile.TarInfo(f"f{i}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    spoiled = bytearray(pack.read_bytes())
    middle = len(spoiled) // 2
    spoiled[middle : middle + 50] = bytes(b ^ 0x55 for b in spoiled[middle : middle + 50])
    pack.write_bytes(bytes(spoiled))
    with pytest.raises(SdError, match="damaged.tar.xz cannot be read as an archive"):
        archive.index(str(pack))


def _checksummed(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def sparse_map_tar(blocks: int, end: bool = True) -> bytes:
    """A GNU sparse member whose map goes on in `blocks` extension blocks (each saying one more follows)."""
    info = tarfile.TarInfo("sparse.bin")
    info.type = tarfile.GNUTYPE_SPARSE
    head = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    head[482] = 1  # an extension block follows
    extension = bytearray(b"%011o\0%011o\0" % (1, 1) * 21 + bytes(8))
    extension[504] = 1
    last = bytearray(extension)
    last[504] = 0
    return _checksummed(head) + bytes(extension) * blocks + (bytes(last) + bytes(1024) if end else b"")


def long_names_tar(count: int) -> bytes:
    """A member after `count` GNU long-name headers, each naming it again."""
    info = tarfile.TarInfo("././@LongLink")
    info.type, info.size = tarfile.GNUTYPE_LONGNAME, 6
    long_name = info.tobuf(tarfile.GNU_FORMAT) + b"x" * 6 + bytes(506)
    return long_name * count + tarfile.TarInfo("f").tobuf(tarfile.GNU_FORMAT) + bytes(1024)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("map.tar.gz", "headers take more than 1 MiB"),  # 35 kB held 26 MB of sparse map in memory (and so on)
        ("cut.tar", "headers are cut short"),  # was an IndexError
        ("names.tar", "more than 16 long-name or pax headers"),  # was a RecursionError
    ],
)
def test_a_tar_member_whose_headers_go_on_and_on_is_refused(tmp_path: Path, name: str, said: str) -> None:
    from sdcore.fs import archive

    pack = tmp_path / name
    made = {"map.tar.gz": lambda: gzip.compress(sparse_map_tar(20_000)), "cut.tar": lambda: sparse_map_tar(3, end=False),
            "names.tar": lambda: long_names_tar(1000)}  # fmt: skip
    pack.write_bytes(made[name]())
    with pytest.raises(SdError, match=said):
        archive.index(str(pack))


def test_an_archive_dropped_from_the_cache_while_a_member_is_read_waits_for_nothing(tmp_path: Path) -> None:
    """A member read halfway (a copy to a slow device, a preview) held the kept tar; the cache dropping that index
    waited for the read to end while holding its lock: every other archive's reading waited too."""
    import threading

    from sdcore.fs import archive

    packs = []
    for i in range(archive._CACHED + 2):
        packs.append(tmp_path / f"pack{i}.tar")
        with tarfile.open(packs[-1], "w") as tf:
            info = tarfile.TarInfo("big")
            info.size = 4 * archive.CHUNK
            tf.addfile(info, io.BytesIO(os.urandom(info.size)))
    archive._cache.clear()
    idx = archive.index(str(packs[0]))
    reading = archive.read_member(idx, "/big")
    first = next(reading)  # the reader waits before its next chunk
    others = threading.Thread(target=lambda: [archive.index(str(p)) for p in packs[1:]], daemon=True)
    others.start()
    others.join(10)
    assert not others.is_alive()  # (it waited without end)
    assert str(packs[0]) not in [key[0] for key in archive._cache]
    assert len(first + b"".join(reading)) == 4 * archive.CHUNK  # the read goes on to its end
    assert idx._tar is None  # and closed the tar as it ended
