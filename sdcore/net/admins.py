"""The admin keys: SSH public keys that may administer this core, kept in `admins.json` in the data dir."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import unicodedata
from pathlib import Path

from sdcore.api.records import AdminKey
from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.net.trust import NAME_LIMIT, key_text
from sdcore.privacy import write_private
from sdcore.sdpath import display
from sdcore.sshlib import asyncssh

log = logging.getLogger("sdcore.net.admin")

ADMINS_FILE = "admins.json"
MAX_KEY_FILE = 64 << 10  # a 16384-bit RSA public key is under 3 KiB
MIN_RSA_BITS = 2048
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
_MAKE_ONE = "make one with `ssh-keygen -t ed25519`"


class BadKey(SdError):
    """A file that is not one OpenSSH public key of a type admin keys may have."""


def parse_key(text: str, source: str) -> tuple[asyncssh.SSHKey, str]:
    """The public key in `text` (an OpenSSH .pub file's content, `source` naming it) and its comment."""
    if "PRIVATE KEY" in text:
        raise BadKey(f"{source} is a private key: give its public half (the .pub file beside it)")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise BadKey(f"{source} holds no public key: give a file like ~/.ssh/id_ed25519.pub")
    if len(lines) > 1:
        raise BadKey(f"{source} holds {len(lines)} lines: give a file with one public key, on one line")
    words = lines[0].split(None, 2)
    algorithm = words[0]
    if algorithm not in KEY_TYPES:
        raise BadKey(f"{source}: {_unusable(algorithm, words[1:])}")
    if len(words) < 2:
        raise BadKey(f"{source} has a key type but no key: give the whole line of the .pub file")
    try:
        key = asyncssh.import_public_key(f"{algorithm} {words[1]}")
    except (asyncssh.KeyImportError, ValueError):
        raise BadKey(f"{source}: the key's data is damaged (copy the .pub file again)") from None
    bits = _bits(key)
    if algorithm == "ssh-rsa" and bits < MIN_RSA_BITS:
        raise BadKey(f"{source} is a {bits}-bit RSA key, too weak: RSA needs {MIN_RSA_BITS} bits or more; {_MAKE_ONE}")
    return key, words[2].strip() if len(words) > 2 else ""


def _unusable(first: str, rest: list[str]) -> str:
    """Why a line that does not start with a usable key type is refused."""
    if any(word in KEY_TYPES for word in " ".join(rest).split()):
        return "options come before the key (authorized_keys style): give the plain .pub file, the key alone"
    if first == "ssh-dss":
        return f"DSA keys are too weak (OpenSSH refuses them too); {_MAKE_ONE}"
    if first.endswith("-cert-v01@openssh.com"):
        return "a certificate: give the plain public key (.pub) of the key it certifies"
    if first.startswith("sk-"):
        return f"security-key (FIDO) keys are not taken here; {_MAKE_ONE}"
    if first.startswith(("ssh-", "ecdsa-", "rsa-")):
        return f"{display(first[:40])} keys are not taken here: use ed25519, ecdsa or rsa (2048 bits or more)"
    return "not an OpenSSH public key (a line like `ssh-ed25519 AAAA... me@host`, as in ~/.ssh/id_ed25519.pub)"


def key_type(key: asyncssh.SSHKey) -> str:
    """A key's type as ssh-keygen -l says it: "ED25519", "ECDSA 256", "RSA 3072"."""
    algorithm = key.algorithm.decode()
    if algorithm == "ssh-ed25519":
        return "ED25519"
    kind = "ECDSA" if algorithm.startswith("ecdsa-") else "RSA"
    return f"{kind} {_bits(key)}"


def _bits(key: asyncssh.SSHKey) -> int:
    """An RSA or ECDSA key's size in bits (0 for ed25519, whose size is fixed)."""
    return int(getattr(key.pyca_key, "key_size", 0))


def clean_name(name: str) -> str:
    """A name people can read and type: no control or invisible characters, spaces collapsed, at most 64."""
    visible = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    return " ".join(visible.split())[:NAME_LIMIT]


def _record(name: str, public_key: str, added: float) -> AdminKey:
    key = asyncssh.import_public_key(public_key)
    return AdminKey(name, key_type(key), key.get_fingerprint("sha256"), key_text(key), added)


class AdminStore:
    """`admins.json` in the data dir (owner-only); re-read when another process changed it, written atomically."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / ADMINS_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: list[AdminKey] = []

    def _reload(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._keys = None, []
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(self.path.read_text() or "{}")
            keys = [_record(str(k["name"]), str(k["public_key"]), float(k["added"])) for k in data["admins"]]
        except (ValueError, KeyError, TypeError, AttributeError, asyncssh.KeyImportError):
            raise SdError(  # never written over: it may be mended
                f"{display(str(self.path))} (the admin keys) is damaged; restore it from a backup, or move it away "
                "and allow the keys again"
            ) from None
        self._keys, self._stamp = keys, stamp

    def _save(self) -> None:
        data = {"admins": [{"name": k.name, "public_key": k.public_key, "added": k.added} for k in self._keys]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, json.dumps(data, indent=1))
        self._stamp = None
        self._reload()

    def keys(self) -> list[AdminKey]:
        """Every admin key, by name."""
        with self._lock:
            self._reload()
            return sorted(self._keys, key=lambda k: k.name)

    def for_key(self, key: asyncssh.SSHKey) -> AdminKey | None:
        """The admin key that is exactly `key`, if it is one."""
        return self.get(key_text(key))

    def get(self, public_key: str) -> AdminKey | None:
        """The admin key with this public key (OpenSSH one-line form, no comment), if it is one now."""
        with self._lock:
            self._reload()
            return next((k for k in self._keys if k.public_key == public_key), None)

    def allow(self, text: str, *, name: str | None = None, file_name: str | None = None) -> AdminKey:
        """Make the public key in `text` (a .pub file's content) an admin key, named `name`, else by the key's
        comment, else by `file_name`'s stem."""
        source = display(file_name) if file_name else "the key"
        key, comment = parse_key(text, source)
        if name is not None and clean_name(name) != name.strip():
            raise SdError(f"the name '{display(name)}' holds control or invisible characters: pick a plain name")
        stem = Path(file_name).name.removesuffix(".pub") if file_name else ""
        chosen = clean_name(name if name is not None else comment or stem)
        if not chosen:
            raise SdError("an admin key needs a name with a visible character: give one with --name")
        with self._lock:
            self._reload()
            same = next((k for k in self._keys if k.public_key == key_text(key)), None)
            if same is not None:
                raise AlreadyExists(f"this key is an admin key already, called '{display(same.name)}'")
            if any(k.name == chosen for k in self._keys):
                raise AlreadyExists(
                    f"an admin key is called '{display(chosen)}' already: give this one another name with --name"
                )
            record = AdminKey(chosen, key_type(key), key.get_fingerprint("sha256"), key_text(key), time.time())
            self._keys.append(record)
            self._save()
        log.info("admin key %s (%s %s) allowed", display(record.name), record.type, record.fingerprint)
        return record

    def revoke(self, name: str) -> AdminKey:
        """Take an admin key away, by its name or its fingerprint."""
        with self._lock:
            self._reload()
            found = next((k for k in self._keys if k.name == name), None) or next(
                (k for k in self._keys if name in (k.fingerprint, k.fingerprint.removeprefix("SHA256:"))), None
            )
            if found is None:
                raise NotFound(f"no admin key called '{display(name)}': see `sd admin list`")
            self._keys.remove(found)
            self._save()
        log.info("admin key %s (%s) revoked", display(found.name), found.fingerprint)
        return found
