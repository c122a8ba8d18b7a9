"""A paired device reading the .sdlibrary folder of a library its peer's process holds open (over sd-rpc, or with
OpenSSH's sftp) never drops that process's SQLite locks: its later writes are not lost."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sdcore.fs import held
from sdcore.library import Libraries
from sdcore.net.testing import device_network, pair

OTHER_PROCESS = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM sqlite_master'); c.close()"
SEEN = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM kept').fetchone()[0])"


async def test_a_peer_reading_an_open_library_s_database_loses_none_of_its_writes(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        lib = Libraries(tmp_path / "a" / "libraries").create("Mine")  # open in alpha's process, which serves b
        database = lib.folder / "database.db"
        try:
            with lib.write() as db:
                db.execute("CREATE TABLE kept (n INTEGER)")
            assert lib.read().execute("SELECT count(*) FROM kept").fetchone() == (0,)
            fs = b.fs_for("alpha")
            for suffix in ("", "-wal", "-shm"):
                path = f"{database}{suffix}"
                assert len(b"".join([c async for c in fs.open_read(path)])) == os.path.getsize(path)  # (open() here would drop them)
                await fs.cas_id(path)
                await fs.full_hash(path)
            if shutil.which("sftp") is not None:
                known = tmp_path / "known_hosts"
                known.write_text(f"[127.0.0.1]:{a.port} {a.public_key}\n")
                batch = tmp_path / "batch"
                batch.write_text("".join(f"get {database}{s} {tmp_path}/got{s}\n" for s in ("", "-wal", "-shm")))
                opts = [
                    "-i", str(b.device.data_dir / "device_key"), "-P", str(a.port), "-o", f"UserKnownHostsFile={known}",
                    "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-F", "/dev/null",
                ]  # fmt: skip

                proc = await asyncio.create_subprocess_exec(
                    "sftp", *opts, "-b", str(batch), "me@127.0.0.1", stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
                out, _ = await asyncio.wait_for(proc.communicate(), 30)
                assert proc.returncode == 0, out
            with lib.write() as db:
                db.execute("INSERT INTO kept VALUES (1)")
            subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(database)], check=True)
            with lib.write() as db:
                db.execute("INSERT INTO kept VALUES (2)")
            seen = subprocess.run([sys.executable, "-c", SEEN, str(database)], capture_output=True, text=True)
            assert seen.stdout == "2\n", seen.stderr
        finally:
            lib.close()
        assert held.parked() == 0
        seen = subprocess.run([sys.executable, "-c", SEEN, str(database)], capture_output=True, text=True)
        assert seen.stdout == "2\n", seen.stderr
        assert os.path.exists(database)


async def test_a_peer_re_reading_an_open_library_s_database_cannot_take_every_descriptor_of_the_process(
    tmp_path: Path,
) -> None:
    """Each read parks a descriptor until the library closes (closing it would drop the library's locks): past
    MAX_PARKED on one file, the peer's reads of it are refused before anything is opened."""
    from sdcore.errors import SdError

    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        lib = Libraries(tmp_path / "a" / "libraries").create("Mine")
        database = str(lib.folder / "database.db")
        try:
            fs = b.fs_for("alpha")
            refused = 0
            for _ in range(held.MAX_PARKED + 40):
                try:
                    assert b"".join([c async for c in fs.open_read(database)])
                except SdError as exc:
                    assert "read 64 times already" in str(exc)
                    refused += 1
            assert refused == 40
            assert held.parked() == held.MAX_PARKED  # not one more, however often it asks
            with lib.write() as db:  # and the library goes on
                db.execute("CREATE TABLE kept (n INTEGER)")
        finally:
            lib.close()
        assert held.parked() == 0
        assert [c async for c in fs.open_read(str(tmp_path / "a" / "libraries" / "Mine.sdlibrary" / "library.json"))]
