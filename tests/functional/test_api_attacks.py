"""The core API's control socket under attack: hostile frames, a planted socket, names a terminal must not obey."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from sdcore.api import wire
from sdcore.api.client import RemoteApi, attach
from sdcore.control import Call, ControlServer
from sdcore.errors import SdError
from sdcore.sdpath import SdPath
from tests.functional.attach_support import answer_and_peak, raw_session
from tests.functional.test_cli_forward import sd, stop
from tests.functional.test_cli_forward import serve as sd_serve

NOBODY = 65534


def _colliding_keys(count: int) -> bytes:
    """A msgpack map of `count` distinct UUIDs that all hash alike (UUID hashes its int: int hashes wrap at 2**61-1)."""
    modulus = (1 << 61) - 1
    body = [bytes([0xDF]) + count.to_bytes(4, "big")]
    for k in range(1, count + 1):
        body.append(bytes([0xD8, 3]) + uuid.UUID(int=5 + k * modulus).bytes + b"\xc0")
    return b"".join(body)


async def test_a_frame_of_colliding_keys_does_not_freeze_the_core(
    served_api: tuple[ControlServer, RemoteApi], tmp_path: Path
) -> None:
    control, api = served_api
    reader, writer = await raw_session(control)
    body = _colliding_keys(
        20_000
    )  # 380 kB: its quadratic dict inserts held the core's loop for 10 s and more
    writer.write(struct.pack(">I", len(body)) + body)
    started = time.monotonic()
    answer = wire.decode(await asyncio.wait_for(wire.read_frame(reader, 1 << 20), 30))
    assert answer["error"][0] == "WireError" and "map key" in answer["error"][1]
    assert time.monotonic() - started < 5
    assert (await api.stat(SdPath(api.device.id, str(tmp_path)))).kind == "dir"  # others are served
    writer.close()


def _fake_core(directory: Path) -> subprocess.Popen[bytes]:
    """User nobody listening on DIRECTORY/control.sock as if it ran the core: it says hello, then records the request."""
    script = (
        "import os, socket, sys, uuid\n"
        "from sdcore.api import wire\n"
        f"os.setgid({NOBODY}); os.setuid({NOBODY})\n"
        "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1] + '/control.sock'); os.chmod(sys.argv[1] + '/control.sock', 0o777)\n"
        "s.listen(); print('listening', flush=True)\n"
        "while True:\n"
        "    c, _ = s.accept()\n"
        "    c.sendall(wire.frame({'hello': {'device': uuid.uuid4(), 'protocol': 1, 'pid': 1}}))\n"
        "    c.sendall(wire.frame({'more': {'out': b'\\x1b]0;owned\\x07'}}))\n"
        "    print(c.recv(1 << 16), flush=True)\n"
        "    c.close()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(directory)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    assert child.stdout is not None and child.stdout.readline() == b"listening\n", child.stderr
    return child


@pytest.mark.skipif(
    not hasattr(os, "setuid") or os.geteuid() != 0, reason="needs root to become another user"
)
async def test_a_socket_another_user_planted_in_the_data_dir_is_not_trusted() -> None:
    data = Path(
        tempfile.mkdtemp(prefix="sd-planted-")
    )  # a data dir others can write to (the user chose /tmp)
    os.chmod(data, 0o1777)
    fake = _fake_core(data)
    try:
        with pytest.raises(SdError, match=f"uid {NOBODY}"):
            await attach(data)  # it would take the hostile process's answers for the core's
        with pytest.raises(SdError, match=f"uid {NOBODY}"):
            await Call.open(data, "sd", argv=["ls"], cwd="/home/me/secret", env={})
    finally:
        fake.kill()
        fake.wait()
        shutil.rmtree(data)


def test_a_name_that_is_not_utf8_is_forwarded_to_the_running_core(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = tmp_path / os.fsdecode(b"caf\xe9")
    folder.mkdir()
    (folder / "\x1b]0;owned\x07\x1b[2J.txt").write_text("x")
    server = sd_serve(data)
    try:
        out = sd(data, "ls", str(folder))  # the folder's name could not be sent to the core: sd failed
        assert out.returncode == 0, out.stderr
        assert "\\x1b]0;owned\\x07\\x1b[2J.txt" in out.stdout and "\x1b" not in out.stdout
    finally:
        stop(server)


@pytest.mark.skipif(
    not hasattr(os, "setuid") or os.geteuid() != 0, reason="needs root to become another user"
)
def test_sd_sends_nothing_to_a_socket_another_user_planted() -> None:
    data = Path(tempfile.mkdtemp(prefix="sd-planted-"))
    os.chmod(data, 0o1777)
    fake = _fake_core(data)
    try:
        out = sd(data, "ls", "/root")
        assert out.returncode == 1 and f"served by uid {NOBODY}" in out.stderr, out.stderr
        assert "\x1b" not in out.stdout
        fake.kill()
        told, _ = fake.communicate(timeout=10)
        assert b"/root" not in told  # its argv never reached the hostile process
    finally:
        fake.kill()
        fake.wait()
        shutil.rmtree(data)


async def test_records_nested_deep_do_not_blow_up_the_cores_memory(
    served_api: tuple[ControlServer, RemoteApi], tmp_path: Path
) -> None:
    control, api = served_api
    reader, writer = await raw_session(control)
    body = wire.encode([b"x" * (2 << 20)])
    for _ in range(150):  # tuples in tuples: decoding each level copied all it held, 2 MiB became 300 MiB
        body = b"\xc9" + struct.pack(">I", len(body) + 1) + b"\x04\x91" + body
    answer, peak = await answer_and_peak(reader, writer, body)
    assert answer["error"][0] == "WireError" and "nested" in answer["error"][1]
    assert peak < 80 << 20, f"{peak >> 20} MiB"
    assert (await api.stat(SdPath(api.device.id, str(tmp_path)))).kind == "dir"
    writer.close()


async def test_rows_claimed_out_of_a_few_bytes_do_not_blow_up_the_cores_memory(
    served_api: tuple[ControlServer, RemoteApi], tmp_path: Path
) -> None:
    import msgpack

    control, api = served_api
    reader, writer = await raw_session(control)
    here = SdPath(api.device.id, str(tmp_path))
    columns = [{"same": here}, {"same": "x"}, {"same": "file"}] + [{"same": 0}] * 10
    batch = msgpack.ExtType(6, wire.encode(["Entry", 1 << 18, columns]))  # 262,144 entries in 300 bytes
    body = wire._pack({"id": 1, "chain": [["get", "echo"], ["call", [[batch] * 100], {}]]})
    answer, peak = await answer_and_peak(reader, writer, body)
    assert answer["error"][0] == "WireError" and "too big" in answer["error"][1]
    assert peak < 80 << 20, f"{peak >> 20} MiB"  # building them all took gigabytes
    assert (await api.stat(here)).kind == "dir"
    writer.close()


async def test_a_record_of_wrong_types_is_refused_and_the_session_goes_on(
    served_api: tuple[ControlServer, RemoteApi], tmp_path: Path
) -> None:
    import msgpack

    control, _ = served_api
    reader, writer = await raw_session(control)
    path = msgpack.ExtType(1, wire.encode(["SdPath", 1, 2, None]))  # its check calls str methods on an int
    body = wire._pack({"id": 1, "chain": [["get", "stat"], ["call", [path], {}]]})
    writer.write(struct.pack(">I", len(body)) + body)
    answer = wire.decode(await asyncio.wait_for(wire.read_frame(reader, 1 << 20), 10))
    assert answer.get("error", [""])[0] == "WireError", answer  # it ended the whole session, its requests too
    here = SdPath(served_api[1].device.id, str(tmp_path))
    writer.write(wire.frame({"id": 2, "chain": [["get", "stat"], ["call", [here], {}]]}))
    answer = wire.decode(await asyncio.wait_for(wire.read_frame(reader, 1 << 20), 10))
    assert answer["id"] == 2 and answer["done"].kind == "dir"
    writer.close()


async def test_starting_the_socket_leaves_modes_of_files_made_meanwhile_alone(tmp_path: Path) -> None:
    import stat
    import threading

    data, made = tmp_path / "data", tmp_path / "made"
    data.mkdir(mode=0o700)
    made.mkdir()
    done, modes = threading.Event(), set()

    def copying() -> None:  # a job's thread writing while the core starts serving (sdtui taking a core over)
        n = 0
        while not done.is_set():
            path = made / f"f{n}"
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            modes.add(stat.S_IMODE(path.stat().st_mode))
            path.unlink()
            n += 1

    old = os.umask(0o022)
    thread = threading.Thread(target=copying)
    thread.start()
    try:
        for _ in range(100):
            control = ControlServer(data)
            await control.start()
            assert stat.S_IMODE(control.path.stat().st_mode) == 0o600
            await control.close()
    finally:
        done.set()
        thread.join()
        os.umask(old)
    assert modes == {0o644}  # the umask the socket was made under was the whole process's: some came out 0600
