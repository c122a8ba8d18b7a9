"""`sd admin allow|list|revoke`: the SSH keys that may administer this core (the explorer and `sd` over SSH)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import typer

from sdcore.sdpath import display
from sdtui.cli.common import JsonOpt, fail, here, print_json, print_table, run_api

admin_app = typer.Typer(
    help="Admin keys: who may run the explorer and `sd` on this core over SSH (full-trust devices may too).",
    no_args_is_help=True,
)
MAX_KEY_FILE = 64 << 10
"""More than a public key file ever holds (a 16384-bit RSA key is under 3 KiB)."""


def register(app: typer.Typer) -> None:
    """Add `admin ...` to the main `sd` app."""
    app.add_typer(admin_app, name="admin")


def _read_stdin() -> str:
    """A public key given on stdin (`ssh HOST sd admin allow - < key.pub`), read line by line: a forwarded
    command's stdin is where its caller typed it."""
    lines: list[str] = []
    while sum(map(len, lines)) <= MAX_KEY_FILE:
        line = sys.stdin.readline()
        if not line:
            return "".join(lines)
        lines.append(line)
    fail("stdin holds more than a public key; give one .pub file's content, e.g. < ~/.ssh/id_ed25519.pub")


def _read_key_file(path: str) -> str:
    """The text of a public key file (`-`: stdin), or a one-line error that says what to give instead."""
    if path == "-":
        return _read_stdin()
    shown = display(path)
    try:
        with open(here(os.path.expanduser(path)), "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        fail(f"{shown}: no such file; give a public key file, e.g. ~/.ssh/id_ed25519.pub")
    except IsADirectoryError:
        fail(f"{shown} is a folder; give a public key file, e.g. ~/.ssh/id_ed25519.pub")
    except OSError as exc:
        fail(f"{shown}: {(exc.strerror or str(exc)).lower()}")
    if len(data) > MAX_KEY_FILE:
        fail(f"{shown} is too large to be a public key; give a .pub file, e.g. ~/.ssh/id_ed25519.pub")
    try:
        return data.decode()
    except UnicodeDecodeError:
        fail(f"{shown} is not a public key (not text); give a .pub file, e.g. ~/.ssh/id_ed25519.pub")


def _as_json(key: Any) -> dict[str, Any]:
    return {"name": key.name, "type": key.type, "fingerprint": key.fingerprint, "public_key": key.public_key,
            "added": key.added}  # fmt: skip


@admin_app.command("allow")
def allow(
    keyfile: str = typer.Argument(..., metavar="KEYFILE.pub", help="An OpenSSH public key file (ed25519, ecdsa, rsa); - reads it from stdin."),
    name: str = typer.Option(None, "--name", help="What to call it (default: the key's comment, else the file name)."),
    json: bool = JsonOpt,
) -> None:
    """Let an SSH key administer this core: `ssh -p 37520 HOST` opens the explorer, `ssh ... sd CMD` runs CMD."""
    text = _read_key_file(keyfile)

    async def body(api: Any) -> None:
        file_name = os.path.basename(keyfile) if keyfile != "-" else None
        key = await api.admins.allow(text, name=name, file_name=file_name)
        if json:
            print_json(_as_json(key))
        else:
            print(f"allowed admin key {display(key.name)} ({key.type} {key.fingerprint})")

    run_api(body)


@admin_app.command("list")
def list_keys(json: bool = JsonOpt) -> None:
    """List the admin keys (devices paired with full trust are admins too: `sd network devices`)."""

    async def body(api: Any) -> None:
        keys = await api.admins.list()
        if json:
            print_json([_as_json(k) for k in keys])
        elif not keys:
            print("no admin keys; `sd admin allow KEYFILE.pub` adds one")
        else:
            rows = [(k.name, k.type, k.fingerprint, time.strftime("%Y-%m-%d %H:%M", time.localtime(k.added)))
                    for k in keys]  # fmt: skip
            print_table(("name", "type", "fingerprint", "added"), rows)

    run_api(body)


@admin_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The key's name (or its fingerprint), as `sd admin list` shows it.")) -> None:
    """Take an admin key away: it can no longer log in, and its open sessions end now."""

    async def body(api: Any) -> None:
        key = await api.admins.revoke(name)
        print(f"revoked admin key {display(key.name)} ({key.fingerprint}); its open sessions are closed")

    run_api(body)
