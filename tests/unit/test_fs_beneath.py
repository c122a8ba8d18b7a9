"""Names resolved beneath an open folder, by the kernel (openat2) and by the descriptor walk alike."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcore.fs import beneath
from sdcore.fs.beneath import Escape, open_beneath, parent_beneath


@pytest.fixture(params=["openat2", "walk"])
def root(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """An open descriptor of tmp_path/root, resolved by the kernel or by the walk."""
    if request.param == "openat2":
        if not beneath.kernel_resolves_beneath():
            pytest.skip("this kernel has no openat2")
    else:
        monkeypatch.setattr(beneath, "_have_openat2", False)
    top = tmp_path / "root"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("outside")
    (top / "a" / "here").symlink_to("b")
    (top / "a" / "b" / "up").symlink_to("../..")  # the root itself
    (top / "a" / "b" / "out").symlink_to("../../..")  # the root's parent
    (top / "abs").symlink_to(top / "a")  # absolute, even though it points inside
    (top / "loop").symlink_to("loop")
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def _read(root: int, rel: str, flags: int = 0) -> bytes:
    fd = open_beneath(root, rel, os.O_RDONLY | flags)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)


def test_links_that_stay_beneath_are_followed(root: int) -> None:
    assert _read(root, "a/b/f.txt") == b"inside"
    assert _read(root, "a/here/f.txt") == b"inside"
    assert _read(root, "a/b/up/a/b/f.txt") == b"inside"


@pytest.mark.parametrize("rel", ["a/b/out/secret.txt", "../secret.txt", "a/../../secret.txt", "abs/b/f.txt"])
def test_a_way_out_is_an_escape(root: int, rel: str) -> None:
    with pytest.raises(Escape):
        _read(root, rel)
    with pytest.raises(Escape):
        parent_beneath(root, rel)


def test_a_final_link_is_not_followed_when_asked(root: int) -> None:
    with pytest.raises(OSError) as exc:
        _read(root, "a/here", os.O_NOFOLLOW)
    assert exc.value.errno == errno.ELOOP
    with pytest.raises(OSError) as exc:
        _read(root, "loop")
    assert exc.value.errno == errno.ELOOP


def test_the_parent_and_the_name_of_what_is_there_or_is_to_be_made(root: int) -> None:
    fd, name = parent_beneath(root, "a/here/new.txt")
    try:
        assert name == "new.txt" and os.path.samestat(os.fstat(fd), os.stat("a/b", dir_fd=root))
    finally:
        os.close(fd)
    fd, name = parent_beneath(root, "a/b/out")  # the link itself: looked at, removed, never followed
    try:
        assert name == "out" and os.readlink(name, dir_fd=fd) == "../../.."
    finally:
        os.close(fd)
    fd, name = parent_beneath(root, "")
    os.close(fd)
    assert name == "."
