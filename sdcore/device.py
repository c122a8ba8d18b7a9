"""This device's identity: an Ed25519 SSH key made on first run, and an id derived from its public key."""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from sdcore.errors import SdError
from sdcore.privacy import check_data_dir, make_private_dir, write_private
from sdcore.sdpath import display

if TYPE_CHECKING:
    from sdcore.sshlib import asyncssh

KEY_FILE = "device_key"
DEVICE_FILE = "device.json"


@dataclass
class Device:
    """This device: its id (derived from its key), its name, and its SSH key."""

    id: uuid.UUID
    name: str
    data_dir: Path
    _key: asyncssh.SSHKey | None = None

    @property
    def key(self) -> asyncssh.SSHKey:
        """The device's private SSH key (loaded on first use: asyncssh is slow to import)."""
        if self._key is None:
            from sdcore.sshlib import asyncssh

            self._key = asyncssh.read_private_key(str(self.data_dir / KEY_FILE))
        return self._key

    def rename(self, name: str) -> None:
        self.name = name.strip() or self.name
        _write_json(self.data_dir / DEVICE_FILE, {"id": str(self.id), "name": self.name})


def device_id_of(public_key: asyncssh.SSHKey) -> uuid.UUID:
    """A device id cannot be claimed without the key: it is a hash of the public key (its SSH wire form)."""
    return uuid.UUID(bytes=blake3.blake3(public_key.public_data).digest()[:16])


def load_or_create(data_dir: Path) -> Device:
    """This device, from its data dir (made owner-only on first use, repaired if others could read it)."""
    make_private_dir(data_dir)
    check_data_dir(data_dir)
    key_path = data_dir / KEY_FILE
    info_path = data_dir / DEVICE_FILE
    if key_path.exists() and info_path.exists():
        try:
            info = json.loads(info_path.read_text())
            return Device(uuid.UUID(info["id"]), info.get("name") or socket.gethostname(), data_dir)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SdError(
                f"{display(str(info_path))} is damaged; move it away and run again (it is made again from"
                f" {KEY_FILE}, with the same device id), or restore it from a backup"
            ) from None
    from sdcore.sshlib import asyncssh

    if key_path.exists():
        key = asyncssh.read_private_key(str(key_path))
    else:
        key = asyncssh.generate_private_key("ssh-ed25519", comment="sdtui device")
        tmp = _tmp_name(key_path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.export_private_key("openssh"))
        try:
            os.link(tmp, key_path)  # never replaces: processes starting together on a new data dir agree
        except FileExistsError:
            key = asyncssh.read_private_key(str(key_path))
        finally:
            os.unlink(tmp)
    device_id = device_id_of(key)
    name = socket.gethostname()
    _write_json(info_path, {"id": str(device_id), "name": name})
    return Device(device_id, name, data_dir, key)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _write_json(path: Path, data: dict) -> None:
    write_private(path, json.dumps(data, indent=1))


def usable_data_dir(data_dir: Path) -> Path:
    """`data_dir`, made if it is missing; a clear error when it cannot be a data dir (a file, no permission)."""
    try:
        make_private_dir(data_dir)
    except OSError as exc:
        raise SdError(
            f"the data dir {display(str(data_dir))} cannot be made ({exc.strerror}); give --data-dir a folder of yours"
        ) from None
    if not data_dir.is_dir():
        raise SdError(f"the data dir {display(str(data_dir))} is a file; give --data-dir a folder of yours")
    return data_dir
