"""The trust store and the confinement of `shared` devices, on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sdcore.device import load_or_create
from sdcore.errors import NotFound
from sdcore.net.confine import Confinement
from sdcore.net.frames import PermissionDenied
from sdcore.net.trust import AmbiguousDevice, Peer, TrustStore, id_matches_key, key_text


def peer(data_dir: Path, name: str, trust: str = "full") -> Peer:
    device = load_or_create(data_dir)
    return Peer(id=device.id, name=name, public_key=key_text(device.key), trust=trust)


def test_peers_are_found_by_name_id_prefix_and_key(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "me")
    laptop, phone = peer(tmp_path / "l", "laptop"), peer(tmp_path / "p", "phone", "shared")
    store.add(laptop)
    store.add(phone)
    assert store.resolve("laptop") == laptop
    assert store.resolve(str(phone.id)[:8]) == phone
    assert store.peer_for_key(load_or_create(tmp_path / "l").key) == laptop
    assert store.peer_for_key(load_or_create(tmp_path / "other").key) is None
    with pytest.raises(NotFound, match="sd network devices"):
        store.resolve("desktop")
    with pytest.raises(AmbiguousDevice):
        store.resolve("")


def test_a_change_by_another_process_is_seen(tmp_path: Path) -> None:
    mine, theirs = TrustStore(tmp_path), TrustStore(tmp_path)
    laptop = peer(tmp_path / "l", "laptop")
    mine.add(laptop)
    assert theirs.get(laptop.id) == laptop
    theirs.remove(laptop.id)
    assert mine.get(laptop.id) is None
    assert os.stat(tmp_path / "trust.json").st_mode & 0o777 == 0o600


def test_a_device_id_is_bound_to_its_key(tmp_path: Path) -> None:
    a, b = load_or_create(tmp_path / "a"), load_or_create(tmp_path / "b")
    assert id_matches_key(a.id, key_text(a.key))
    assert not id_matches_key(b.id, key_text(a.key))


def test_shared_confinement(tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / "in").mkdir(parents=True)
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", share / "out-link")
    os.symlink("in", share / "in-link")
    c = Confinement("shared", lambda: [str(share)])
    assert c.check(str(share)) == str(share)
    assert c.check(str(share / "in" / "new-file")) == str(share / "in" / "new-file")
    os.close(c.open(str(share / "in-link"), os.O_RDONLY | os.O_DIRECTORY))  # a link that stays inside
    for bad in ("/etc/passwd", str(share / ".." / "secret"), "relative", str(tmp_path)):
        with pytest.raises(PermissionDenied):
            c.check(bad)
    with pytest.raises(PermissionDenied, match="outside the folders"):  # what the name leads to, when opened
        c.open(str(share / "out-link"), os.O_RDONLY)
    with c.parent(str(share / "out-link")) as (fd, name):  # the link itself may be looked at or removed
        assert name == "out-link" and os.readlink(name, dir_fd=fd) == str(tmp_path / "secret")
    # a sibling folder whose name starts like the share is outside it
    (tmp_path / "share2").mkdir()
    with pytest.raises(PermissionDenied):
        c.check(str(tmp_path / "share2"))
    assert Confinement("full", lambda: []).check("/etc/passwd") == "/etc/passwd"
