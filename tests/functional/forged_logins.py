"""Forged SSH logins for the attack tests, made with paramiko (whose client lets a test send what asyncssh's would
refuse to): a public key offered with a signature its private key never made, and a second user-auth request in
one login."""

from __future__ import annotations

import base64
import socket
import threading

import paramiko


class Forged(paramiko.Ed25519Key):
    """A public key (public: a device's host key, an admin's key file) offered with a signature its private key
    never made."""

    def __init__(self, public_key: str) -> None:
        super().__init__(data=base64.b64decode(public_key.split()[1]))

    def sign_ssh_data(self, data: bytes, algorithm: str | None = None) -> paramiko.Message:
        m = paramiko.Message()
        m.add_string(self.name)
        m.add_string(bytes(64))
        return m


def login(port: int) -> paramiko.Transport:
    """An SSH connection to 127.0.0.1:`port`, its keys exchanged, nobody logged in yet."""
    transport = paramiko.Transport(socket.create_connection(("127.0.0.1", port), timeout=10))
    transport.start_client(timeout=10)
    return transport


def auth_again(transport: paramiko.Transport, username: str, key: paramiko.PKey | None = None) -> list[str]:
    """A further user-auth request in the same login, by `key`, else method `none` (paramiko's own
    `auth_*` would first ask for the service again, which the server refuses)."""
    event = threading.Event()
    handler = transport.auth_handler = paramiko.auth_handler.AuthHandler(transport)
    handler.auth_event, handler.username = event, username
    handler.auth_method, handler.private_key = ("publickey", key) if key else ("none", None)
    accepted = paramiko.Message()
    accepted.add_string("ssh-userauth")
    accepted.rewind()
    with transport.lock:
        handler._parse_service_accept(accepted)
    return handler.wait_for_response(event)  # type: ignore[no-any-return]
