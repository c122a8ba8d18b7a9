"""Against a real `sd serve` process: a copy cut by kill -9 resumes; `sd rm` and `sd mv` across devices."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcore import ops
from sdcore.core import Core
from sdcore.events import JobProgress
from sdcore.net.testing import device_network, pair
from tests.functional.ssh_support import free_port

SD = [sys.executable, "-c", "from sdtui.cli import main; main()"]
MiB = 1 << 20


def _env(tmp_path: Path, who: str) -> dict[str, str]:
    """Each device its own freedesktop trash (XDG_DATA_HOME), as on two machines."""
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / f"xdg-{who}")}


def sd(
    tmp_path: Path, who: str, *args: str, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*SD, "--data-dir", str(tmp_path / who), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(tmp_path, who),
        cwd=cwd,
    )
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


class Server:
    """`sd serve --listen 127.0.0.1:PORT` for one data dir, as a child process."""

    def __init__(self, tmp_path: Path, who: str, port: int, wrap: tuple[str, ...] = ()) -> None:
        self.tmp_path, self.who, self.port = tmp_path, who, port
        self.wrap = wrap  # a command the server runs under (`unshare --mount`: a machine with its own mounts)
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*self.wrap, *SD, "--data-dir", str(self.tmp_path / self.who), "serve", "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(self.tmp_path, self.who),
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("serving "):
                assert line.rstrip().endswith(f"127.0.0.1:{self.port}")
                return
        raise AssertionError(f"`sd serve` did not start: {''.join(seen)}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def _pair_on_port(tmp_path: Path, port: int, server_grants: str = "full") -> None:
    """beta hosts the pairing on the port its `sd serve` will use, alpha joins: alpha knows where beta is."""
    async with (
        device_network(tmp_path / "a", "alpha", listen=False) as alpha,
        device_network(tmp_path / "b", "beta", listen=False) as beta,
    ):
        await beta.start(f"127.0.0.1:{port}")
        await pair(beta, alpha, host_trust=server_grants)


@pytest.fixture
def beta_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """Device beta serving on a fixed port of 127.0.0.1, paired with alpha (tmp_path/'a').

    beta grants alpha full trust, or what a test's `@pytest.mark.parametrize("beta_server", [...], indirect=True)` says.
    """
    port = free_port()
    asyncio.run(_pair_on_port(tmp_path, port, getattr(request, "param", "full")))
    server = Server(tmp_path, "b", port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def test_a_copy_cut_by_killing_the_server_resumes_and_ends_byte_identical(
    tmp_path: Path, beta_server: Server
) -> None:
    size = 160 * MiB + 12345
    big = tmp_path / "film.mkv"
    with big.open("wb") as f:
        for _ in range(size // (16 * MiB)):
            f.write(os.urandom(16 * MiB))
        f.write(os.urandom(size % (16 * MiB)))
    want = _sha256(big)
    inbox = tmp_path / "beta-inbox"
    inbox.mkdir()

    async def scenario() -> tuple[int, int, list[int]]:
        async with Core(tmp_path / "a") as core:
            library = core.library()
            with core.bus.subscribe(JobProgress) as events:
                job_id = await ops.copy(library, [core.local_path(str(big))], core.resolve(f"beta:{inbox}"))
                async for event in events:  # the user watches the bar move, then beta's server dies
                    if event.job_id == job_id and event.done >= 24 * MiB:
                        break
            beta_server.kill()
            record = await asyncio.wait_for(library.jobs.wait(job_id), 20)
            assert record.state == "failed"
            assert "lost the connection to beta" in (record.error or "")
            assert f"sd job resume {job_id}" in (record.error or "")
            assert not (inbox / "film.mkv").exists()
            kept = sum(p.stat().st_size for p in inbox.iterdir())  # the partial file beta kept
            assert 0 < kept < size

            beta_server.start()  # back on the same port and data dir
            with core.bus.subscribe(JobProgress) as events:
                await library.jobs.resume(job_id)
                waiter = asyncio.ensure_future(library.jobs.wait(job_id))
                seen: list[int] = []
                while not waiter.done():
                    nxt = asyncio.ensure_future(events.__anext__())
                    done, _ = await asyncio.wait({waiter, nxt}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
                    if nxt in done:
                        if nxt.result().job_id == job_id:
                            seen.append(nxt.result().done)
                    else:
                        nxt.cancel()
            record = waiter.result()
            assert record.state == "completed", record.error
            return kept, record.result.bytes, seen

    kept, done, seen = asyncio.run(scenario())
    assert _sha256(inbox / "film.mkv") == want  # byte-identical
    assert os.listdir(inbox) == ["film.mkv"]  # no partial or temporary file left
    assert seen and seen[0] >= kept  # it carried on at the byte: the first progress already counts what beta kept
    assert done == size  # and counted every byte once


def test_a_copy_of_many_small_files_cut_by_killing_the_receiver_leaves_only_whole_files_and_resumes(
    tmp_path: Path, beta_server: Server
) -> None:
    photos = tmp_path / "photos"
    made = {}
    for i in range(2000):
        path = photos / f"roll{i // 500}" / f"img{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1024 + i * 61 % 7168))
        made[path.relative_to(photos)] = path.read_bytes()
    total = sum(len(data) for data in made.values())
    inbox = tmp_path / "beta-inbox"
    inbox.mkdir()
    there = inbox / "photos"

    async def scenario() -> None:
        async with Core(tmp_path / "a") as core:
            library = core.library()
            with core.bus.subscribe(JobProgress) as events:
                job_id = await ops.copy(library, [core.local_path(str(photos))], core.resolve(f"beta:{inbox}"))
                async for event in events:  # beta's server dies a third of the way
                    if event.job_id == job_id and event.done >= total // 3:
                        break
            beta_server.kill()
            record = await asyncio.wait_for(library.jobs.wait(job_id), 20)
            assert record.state == "failed"
            assert f"sd job resume {job_id}" in (record.error or "")  # (lost the connection, or cannot reach beta)

            present = [p for p in there.rglob("*") if not p.is_dir()]
            assert 0 < len(present) < len(made)
            for p in present:  # each file there is one of the copies, whole; nothing else (no temporary file)
                assert p.read_bytes() == made.get(p.relative_to(there)), p

            beta_server.start()
            await library.jobs.resume(job_id)
            record = await asyncio.wait_for(library.jobs.wait(job_id), 120)
            assert record.state == "completed", record.error
            assert (record.result.files, record.result.bytes) == (len(made), total)  # each counted once

    asyncio.run(scenario())
    found = {p.relative_to(there): p.read_bytes() for p in there.rglob("*") if not p.is_dir()}
    assert found == made  # every file, whole, and nothing else


def test_rm_and_mv_on_a_paired_device_from_the_command_line(tmp_path: Path, beta_server: Server) -> None:
    there = tmp_path / "beta-files"
    there.mkdir()
    (there / "old.log").write_text("yesterday")
    (there / "junk").mkdir()
    (there / "junk" / "core.dump").write_bytes(b"\0" * 1000)

    out = sd(tmp_path, "a", "rm", f"beta:{there / 'old.log'}").stdout
    assert f"trashed beta:{there / 'old.log'} (`sd trash restore beta:{there / 'old.log'}` brings it back)" in out
    assert not (there / "old.log").exists()
    trashed = json.loads(sd(tmp_path, "b", "trash", "list", "--json").stdout)  # in beta's own trash
    assert [(t["original_path"], t["size"]) for t in trashed] == [(str(there / "old.log"), 9)]
    assert not (tmp_path / "xdg-a" / "Trash").exists()  # nothing landed in alpha's
    out = sd(tmp_path, "a", "trash", "restore", f"beta:{there / 'old.log'}").stdout  # from beta's trash, by alpha
    assert out == f"restored beta:{there / 'old.log'}\n"
    assert (there / "old.log").read_text() == "yesterday"
    assert json.loads(sd(tmp_path, "b", "trash", "list", "--json").stdout) == []

    out = sd(tmp_path, "a", "rm", "--permanent", f"beta:{there / 'junk'}").stdout
    assert out == f"deleted beta:{there / 'junk'}\n"
    assert not (there / "junk").exists()
    assert len(json.loads(sd(tmp_path, "b", "trash", "list", "--json").stdout)) == 0  # gone for good

    report = tmp_path / "report.pdf"
    report.write_bytes(os.urandom(100_000))
    want = _sha256(report)
    out = sd(tmp_path, "a", "mv", "./report.pdf", f"beta:{there}/", cwd=tmp_path).stdout
    assert "moved 1 file" in out and "(verified)" in out
    assert not report.exists()  # gone here
    assert _sha256(there / "report.pdf") == want  # intact there
    assert sorted(os.listdir(there)) == ["old.log", "report.pdf"]  # no temporary file left

    missing = sd(tmp_path, "a", "rm", f"beta:{there / 'nope.txt'}", check=False)
    assert missing.returncode == 1 and "nope.txt" in missing.stderr and "Traceback" not in missing.stderr

    # the same path text here and on beta (one disk in this test): each line names the device it is about
    twice = there / "twice.txt"
    twice.write_text("one file, two names for it")
    both = sd(tmp_path, "a", "rm", str(twice), f"beta:{twice}")
    assert both.stdout == f"trashed {twice} (`sd trash restore {twice}` brings it back)\n"
    assert both.stderr == f"warning: beta:{twice} was already gone\n"


@pytest.mark.parametrize("beta_server", ["shared"], indirect=True)
def test_a_shared_device_cannot_rm_outside_the_share(tmp_path: Path, beta_server: Server) -> None:
    share, private = tmp_path / "share", tmp_path / "private"
    share.mkdir()
    private.mkdir()
    (share / "draft.txt").write_text("shared draft")
    (private / "diary.txt").write_text("mine")
    (share / "diary-link").symlink_to(private / "diary.txt")
    sd(tmp_path, "b", "share", "add", str(share))  # carried out by beta's running server

    for args in (
        ["rm", f"beta:{private / 'diary.txt'}"],
        ["rm", "--permanent", f"beta:{private}"],
        ["rm", f"beta:{share}/../private/diary.txt"],
        ["mv", f"beta:{private / 'diary.txt'}", str(tmp_path)],
    ):
        refused = sd(tmp_path, "a", *args, check=False)
        assert refused.returncode == 1, refused.stdout
        assert "outside the folders this device shares" in refused.stderr or "'..' is not allowed" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert (private / "diary.txt").read_text() == "mine"  # nothing was deleted
    assert not (tmp_path / "diary.txt").exists()
    assert json.loads(sd(tmp_path, "b", "trash", "list", "--json").stdout) == []

    sd(tmp_path, "a", "rm", f"beta:{share / 'draft.txt'}")  # inside the share it is allowed
    assert not (share / "draft.txt").exists()
    sd(tmp_path, "a", "trash", "restore", f"beta:{share / 'draft.txt'}")  # and so is putting it back
    assert (share / "draft.txt").read_text() == "shared draft"
    sd(tmp_path, "b", "rm", str(private / "diary.txt"))  # beta's user trashes a file of their own
    refused = sd(tmp_path, "a", "trash", "restore", f"beta:{private / 'diary.txt'}", check=False)
    assert refused.returncode == 1 and "outside the folders this device shares" in refused.stderr
    assert not (private / "diary.txt").exists()  # still in beta's trash, for beta to restore


def test_a_copy_the_device_cannot_write_fails_naming_the_destination_not_the_source(
    tmp_path: Path, beta_server: Server
) -> None:
    """A person copied a file into beta's /proc (nothing can be made there): `sd cp` said `copied 0 files`, warned
    that the file here "vanished before it was copied" and exited 0; the file was never gone."""
    report = tmp_path / "report.txt"
    report.write_text("quarterly")
    for verb in ("cp", "mv"):
        refused = sd(tmp_path, "a", verb, str(report), "beta:/proc/", check=False)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "vanished" not in refused.stderr and "cannot write /proc/report.txt" in refused.stderr, refused.stderr
        assert len(refused.stderr.splitlines()) == 1, refused.stderr
        assert report.read_text() == "quarterly"  # a move that failed left the file here


def test_a_path_missing_on_a_paired_device_is_named_with_its_device(tmp_path: Path, beta_server: Server) -> None:
    """`sd ls beta:/srv/nope` said "error: /srv/nope: no such file or directory": a path of this device, by its looks."""
    nope = tmp_path / "beta-files" / "nope.txt"
    for args in (["ls", f"beta:{nope}"], ["rm", f"beta:{nope}"], ["cp", f"beta:{nope}", str(tmp_path)]):
        missing = sd(tmp_path, "a", *args, check=False)
        assert missing.returncode == 1
        assert missing.stderr.startswith(f"error: beta:{nope}"), missing.stderr
        assert len(missing.stderr.splitlines()) == 1, missing.stderr
