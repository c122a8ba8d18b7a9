"""Volumes from the kernel's mount table, and their identity: UUID, id file, fingerprint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sdcore.volumes import (
    ID_FILE,
    DeviceFacts,
    Mount,
    Volume,
    VolumeNotFound,
    browsable,
    find,
    identify,
    parse_mountinfo,
    volume_of,
)

REAL_LINES = "\n".join(
    [
        "22 27 0:21 / /proc rw,relatime - proc proc rw",
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard",
        "25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683784k",
        r"61 27 8:33 / /media/ann/My\040Disk\011tab rw,nosuid,nodev,relatime shared:7 master:1 - vfat /dev/sdc1 rw",
        "56 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw",
        "70 27 254:0 /var/lib/containers/x/.containerenv /run/.containerenv ro,relatime - ext4 /dev/vda rw",
        "71 27 0:60 / /mnt/nas rw,relatime - nfs4 server:/export rw,vers=4.2",
        "72 27 7:3 / /snap/core/1 ro,nodev,relatime - squashfs /dev/loop3 ro",
        "80 27 0:70 / /merged rw - overlay overlay rw,lowerdir=/a",
        r"90 27 8:49 / /media/caf\303\251 ro,relatime - ext4 /dev/sdd1 ro",
        "not a mount line",
    ]
)


def test_mountinfo_lines_are_read_with_escapes_undone_exactly() -> None:
    mounts = {m.point: m for m in parse_mountinfo(REAL_LINES)}
    assert len(mounts) == 10  # the malformed line is skipped, not fatal
    disk = mounts["/media/ann/My Disk\ttab"]
    assert (disk.source, disk.fs_type, disk.read_only, disk.device) == ("/dev/sdc1", "vfat", False, "8:33")
    assert "/media/café" in mounts and mounts["/media/café"].read_only  # octal UTF-8 bytes make one character
    assert mounts["/run/.containerenv"].root == "/var/lib/containers/x/.containerenv"


def test_only_volumes_a_person_browses_are_listed() -> None:
    points = [m.point for m in browsable(parse_mountinfo(REAL_LINES))]
    # no proc/tmpfs/squashfs/overlay, no folder of / bind-mounted again, no single file podman bind-mounts
    assert points == ["/", "/media/ann/My Disk\ttab", "/mnt/nas", "/media/café"]


def test_the_last_mount_over_a_point_is_the_one_listed() -> None:
    text = "40 27 8:1 / /media/usb rw - ext4 /dev/sdb1 rw\n41 40 8:17 / /media/usb rw - vfat /dev/sdc1 rw\n"
    assert [m.source for m in browsable(parse_mountinfo(text))] == ["/dev/sdc1"]


def mount_at(point: Path, *, read_only: bool = False, source: str = "/dev/sdz1") -> Mount:
    return Mount(1, "8:1", "/", str(point), read_only, "vfat", source)


def test_a_volume_with_a_uuid_is_known_by_it_wherever_it_is_mounted(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    facts = DeviceFacts(uuids={"/dev/sdz1": "1A2B-3C4D"}, labels={"/dev/sdz1": "PHOTOS 2019"})
    one, other = volume_of(mount_at(first), facts, claim=True), volume_of(mount_at(second), facts, claim=True)
    assert one.id == other.id == "uuid:1a2b-3c4d"
    assert one.name == "PHOTOS 2019"
    assert not (first / ID_FILE).exists()  # a UUID needs no id file


def test_a_volume_without_uuid_gets_an_id_file_on_first_use_and_keeps_it(tmp_path: Path) -> None:
    root = tmp_path / "disk"
    root.mkdir()
    no_facts = DeviceFacts({}, {})
    listed = volume_of(mount_at(root), no_facts)
    assert listed.id.startswith("fingerprint:") and not (root / ID_FILE).exists()  # listing writes nothing
    claimed = volume_of(mount_at(root), no_facts, claim=True)
    assert claimed.id.startswith("file:") and (root / ID_FILE).is_file()
    moved = tmp_path / "elsewhere"
    root.rename(moved)  # the same disk at another mount point
    assert volume_of(mount_at(moved), no_facts, claim=True).id == claimed.id


def test_a_read_only_volume_is_never_written_and_is_known_by_its_fingerprint(tmp_path: Path) -> None:
    root = tmp_path / "cdrom"
    root.mkdir()
    volume = volume_of(mount_at(root, read_only=True), DeviceFacts({}, {}), claim=True)
    assert volume.id.startswith("fingerprint:") and volume.read_only
    assert os.listdir(root) == []
    assert volume_of(mount_at(root, read_only=True), DeviceFacts({}, {})).id == volume.id


def id_of(root: Path, *, write: bool) -> str:
    return identify(str(root), label="", fs_type="vfat", size=1, uuid_=None, write=write)


def test_a_planted_id_file_that_is_not_an_id_is_not_believed(tmp_path: Path) -> None:
    root = tmp_path / "disk"
    root.mkdir()
    (root / ID_FILE).write_text("../../etc/passwd\n")
    assert id_of(root, write=False).startswith("fingerprint:")
    (root / ID_FILE).unlink()
    os.mkfifo(root / ID_FILE)  # that would block a reader for ever
    assert id_of(root, write=True).startswith("fingerprint:")
    (root / ID_FILE).unlink()
    (root / ID_FILE).symlink_to(tmp_path / "someone else's id")
    (tmp_path / "someone else's id").write_text("8c1d3f2e-0000-4000-8000-000000000000\n")
    assert id_of(root, write=True).startswith("fingerprint:")


def test_the_system_volume_is_told_apart_and_never_claimed(tmp_path: Path) -> None:
    root = Mount(1, "254:0", "/", "/", False, "ext4", "/dev/vda")
    volume = volume_of(root, DeviceFacts({}, {}), claim=True)
    assert volume.system and not volume.removable
    assert not Path("/", ID_FILE).exists()


def test_a_name_two_disks_share_names_neither() -> None:
    def disk(point: str, label: str) -> Volume:
        return Volume(f"uuid:{point}", label, "vfat", point, "/dev/sdz1", 1, 1, True, False, False)

    two = [disk("/media/a", "BACKUP"), disk("/media/b", "BACKUP")]
    with pytest.raises(VolumeNotFound, match=r"2 volumes are named 'BACKUP' \(/media/a, /media/b\)"):
        find(two, "BACKUP")
    assert find(two, "/media/b").mount_point == "/media/b"
    with pytest.raises(VolumeNotFound, match="mounted: /media/a, /media/b"):
        find(two, "PHOTOS")


def test_names_fat_cannot_hold_are_told_and_fitted_without_two_landing_on_one() -> None:
    from sdcore.ops.limits import fit_names
    from sdcore.volumes import fitted_name, unfit_name

    assert [unfit_name(n) for n in ("a:b", "why?", "notes.", "trail ", "ok.txt", ".hidden", "..")] == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip
    assert fitted_name('<"x|y">. ') == "__x_y__" and fitted_name("...") == "_"
    # in the copy's order: the first of two names differing in case keeps it, the next gets a number
    names = ["README", "a:b", "a?b", "ok", "readme"]
    assert fit_names(names, "rename") == {
        "README": "README", "a:b": "a_b", "a?b": "a_b (1)", "ok": "ok", "readme": "readme (1)",
    }  # fmt: skip
    assert fit_names(names, "skip") == {"README": "README", "a:b": None, "a?b": None, "ok": "ok", "readme": None}


def test_the_mount_holding_a_path_is_the_deepest_one_and_fat_has_limits(tmp_path: Path) -> None:
    from sdcore.volumes import limits_at, mount_at

    (tmp_path / "usb" / "photos").mkdir(parents=True)
    table = tmp_path / "mountinfo"
    table.write_text(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        f"61 27 8:33 / {tmp_path}/usb rw,relatime - vfat /dev/sdc1 rw\n"
    )
    held = mount_at(str(tmp_path / "usb" / "photos" / "not yet.jpg"), str(table))  # a file not made yet
    assert held is not None and held.point == f"{tmp_path}/usb"
    fat = limits_at(str(tmp_path / "usb" / "photos"), str(table))
    assert fat is not None and fat.name == "FAT32" and fat.max_file == 4 * (1 << 30) - 1 and fat.dos_names
    assert limits_at(str(tmp_path), str(table)) is None  # ext4: no limit worth telling
