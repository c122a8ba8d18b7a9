"""Network: this device's SSH server, its links to paired devices, pairing, Spacedrop and RemoteFS."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import socket
import stat
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdcore.device import Device
from sdcore.errors import NotAdmin, NotFound, SdError
from sdcore.events import DeviceConnected, DeviceLost, DeviceRenamed, DropOffered, EventBus, PairingProgress
from sdcore.fs import held
from sdcore.fs.base import CHUNK
from sdcore.fs.local import fs_error
from sdcore.net.admin_sessions import AdminPrograms, AdminSessions, refuse
from sdcore.net.admins import AdminKey, AdminStore
from sdcore.net.confine import Confinement
from sdcore.net.frames import DeviceUnreachable, NetError, NotTrusted
from sdcore.net.pairing import (
    CODE_TTL,
    PairingError,
    PairingOffer,
    host_side,
    joiner_side,
    new_code,
    normalize_code,
)
from sdcore.net.refusals import RefusalLog
from sdcore.net.remote_fs import RemoteFS
from sdcore.net.rpc_client import NotSent, RpcClient
from sdcore.net.rpc_server import SERVER_THREADS, DeviceHandles, RpcSession
from sdcore.net.sftp import ConfinedSFTPServer
from sdcore.net.trust import (
    NAME_LIMIT,
    TRUST_LEVELS,
    Peer,
    TrustStore,
    id_matches_key,
    key_text,
    parse_device_id,
)
from sdcore.sdpath import DeviceId, display
from sdcore.sshlib import asyncssh

if TYPE_CHECKING:
    from sdcore.api.client import RemoteApi

DEFAULT_PORT = 37520
PAIR_USER = "sd-pair"
RPC_USER = "sd"
RPC_SUBSYSTEM = "sd-rpc"
PAIR_SUBSYSTEM = "sd-pair"
API_SUBSYSTEM = "sd-api"
"""The core API (the control socket's protocol) for those who may administer this core."""
DROP_ANSWER_TIMEOUT = 300.0
# Anyone may log in as the pairing user: only a few such connections at a time, each for a while
# (a pairing's own steps time out after 60 s), so nobody can pile them up.
MAX_PAIRING_CONNECTIONS = 8
PAIRING_CONNECTION_TTL = 150.0
MAX_LOGGING_IN = 64  # connections not logged in yet (each has 30 s); the oldest make room for new ones
# AES-GCM runs on the CPU's AES instructions (asyncssh's ChaCha20 path is slower); bigger windows and
# packets cut per-packet Python overhead on fast links.
CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr"]
TUNING: dict[str, Any] = {"encryption_algs": CIPHERS, "window": 16 << 20, "max_pktsize": 256 << 10}
MAX_KEYS_LOGGED = 8  # keys one refused login is logged with (a client may offer many)
# A session channel takes a window of its client's data before any request: so many open at once per device or
# admin key (over its connections), and a pairing connection (anyone, no key) one, with a window its few small
# frames fit in.
MAX_OPEN_SESSIONS = 32
MAX_ADDRESSES = 4  # addresses kept for a paired device, the one it last connected from first
MAX_OPEN_SESSIONS_SHARED = 8  # a shared device needs one or two (its link's sd-rpc, an sftp): 128 MiB of windows at most
PAIRING_WINDOW = 64 << 10
NOT_ADMIN = (
    "sd serve runs commands and the explorer for admins only (admin keys, devices paired with full trust): "
    "on the server, `sd admin allow KEYFILE.pub` makes your key one"
)

log = logging.getLogger("sdcore.net.admin")


def _asked(process: asyncssh.SSHServerProcess[bytes]) -> str:
    """What a session asked for, for the log (the command as the peer wrote it, escaped)."""
    command = process.command
    if command is not None:
        return f"command '{display(command[:200])}'"
    return "a terminal (pty)" if process.get_terminal_type() else "a session with no command"


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """`HOST:PORT`, `HOST` or `[v6]:PORT` -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        return host or "127.0.0.1", int(port) if port else default_port
    except ValueError:
        raise SdError(
            f"not an address: {text!r}; write HOST:PORT, e.g. 192.168.1.20:{DEFAULT_PORT}"
        ) from None


class _Incoming(asyncssh.SSHServer):
    """One incoming SSH connection: a paired device or an admin key (public key auth), or a pairing attempt.

    Its identity, `peer` or `admin_key`, is the paired device or admin key whose key signed the login,
    settled once the login completes; a pairing connection has none and gets the pairing subsystem only.
    """

    def __init__(self, net: Network) -> None:
        self.net = net
        self.peer: Peer | None = None
        self.admin_key: AdminKey | None = None
        self.pairing = False
        self.address = "?"
        """Where the connection comes from (HOST:PORT)."""
        self.host = "?"
        """Its host alone: refusals are counted by host (a client picks a new port each time)."""
        self._user: str | None = None  # the user name it logs in as, escaped
        self._offered: Peer | None = None
        self._offered_admin: AdminKey | None = None
        self._offered_fingerprint = "?"
        self._tried: dict[str, str] = {}  # fingerprint -> whose key it is: what a refused login is logged with
        self._was_admin = False
        self.conn: asyncssh.SSHServerConnection | None = None
        self.dropping = False  # it came to send files: its end is not a lost device
        self._sessions: set[asyncio.Future[None]] = set()  # each open session's channel closing

    @property
    def admin(self) -> str | None:
        """Who may administer this core over this connection, as of now: its admin key's name while the key is
        allowed, else its device's name while that device is paired with full trust; None for anyone else."""
        if self.admin_key is not None:
            try:
                key = self.net.admins.get(self.admin_key.public_key)
            except SdError:  # admins.json damaged meanwhile: no admin key counts until it is mended
                key = None
            if key is not None:
                return key.name
        if self.peer is not None:
            now = self.net._trusted_now(self.peer)
            if now is not None and now.trust == "full":
                return now.name
        return None

    @property
    def who(self) -> str:
        """How the log names this connection's identity (peer-chosen names escaped)."""
        if self.peer is not None:
            return f"device {display(self.peer.name)}"
        if self.admin_key is not None:
            return f"admin key {display(self.admin_key.name)}"
        return "the pairing user" if self.pairing else "nobody (not logged in)"

    def cut(self, why: str) -> None:
        """Close the connection now, and log why."""
        if self.conn is not None:
            log.info("cut %s from %s: %s", self.who, self.address, why)
            self.conn.close()

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peername = conn.get_extra_info("peername")
        if peername:
            host, port = peername[0], peername[1]
            self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            self.host = host
        waiting = self.net._logging_in
        if len(waiting) >= MAX_LOGGING_IN:  # someone piles up connections: the oldest goes
            oldest = next(iter(waiting))
            waiting.pop(oldest)
            if oldest.conn is not None:
                oldest.conn.close()
        waiting[self] = None

    def connection_lost(self, exc: Exception | None) -> None:
        logging_in = self in self.net._logging_in
        self.net._logging_in.pop(self, None)
        if logging_in and self._user is not None:
            self._log_refused(exc)
        elif self.peer is not None or self.admin_key is not None:
            log.info("logout: %s from %s%s", self.who, self.address, f" ({display(str(exc))})" if exc else "")
        self.net._incoming.discard(self)
        self.net._pairing.discard(self)
        if self.peer is not None and not (self.dropping and exc is None):
            self.net.bus.publish(DeviceLost(self.peer.id, self.peer.name, str(exc or "disconnected")))

    def _log_refused(self, exc: Exception | None) -> None:
        if self._tried:
            keys = ", ".join(f"key {fp} ({what})" for fp, what in self._tried.items())
        else:
            keys = "no public key offered (a key is the only way in)"
        why = f"; {display(str(exc))}" if exc else ""
        self.net.refusals.refused(
            self.host, "refused login from %s as user '%s': %s%s", self.address, self._user, keys, why
        )

    def begin_auth(self, username: str) -> bool:
        self._user = display(username[:NAME_LIMIT])  # for the log
        # a key offered under another user name proves nothing for this one
        self._offered, self._offered_admin = None, None
        self.pairing = username == PAIR_USER
        if self.pairing and self not in self.net._pairing and self.conn is not None:
            if len(self.net._pairing) >= MAX_PAIRING_CONNECTIONS:
                self.conn.close()
                return True
            self.net._pairing.add(self)
            asyncio.get_running_loop().call_later(PAIRING_CONNECTION_TTL, self.conn.close)
        return not self.pairing  # the pairing user logs in without a key

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # asyncssh asks this for a key merely offered too (a query, or a signature it has yet to check):
        # remember whose key it is, it proves nothing yet
        self._offered = self.net.trust.peer_for_key(key)
        try:
            self._offered_admin = self.net.admins.for_key(key)
        except SdError as exc:  # a damaged admins.json: no admin key logs in until it is mended
            log.error("%s", exc)
            self._offered_admin = None
        fingerprint = self._offered_fingerprint = key.get_fingerprint("sha256")
        if fingerprint in self._tried or len(self._tried) < MAX_KEYS_LOGGED:
            whose = [
                *([f"device {display(self._offered.name)}"] if self._offered else []),
                *([f"admin key {display(self._offered_admin.name)}"] if self._offered_admin else []),
            ]
            self._tried[fingerprint] = (
                f"{' and '.join(whose)}, no valid signature" if whose else "neither an admin key nor a paired device"
            )
        return self._offered is not None or self._offered_admin is not None

    def auth_completed(self) -> None:
        # Public key is the only method a user other than the pairing one can succeed with, and
        # asyncssh checks the signature right after asking validate_public_key about that same key,
        # with no other request in between: the last key offered is the one that signed.
        self.net._logging_in.pop(self, None)
        if self.pairing:
            log.info("login: the pairing user from %s (pairing only)", self.address)
            return
        self.peer, self.admin_key = self._offered, self._offered_admin
        self._was_admin = self.admin is not None
        trust = f", {self.peer.trust} trust" if self.peer is not None else ""
        admin = f", admin {display(self.admin or '')}" if self._was_admin else ", not an admin"
        log.info("login: %s from %s as user '%s', key %s%s%s", self.who, self.address, self._user,
                 self._offered_fingerprint, trust, admin)  # fmt: skip
        self.net._incoming.add(self)
        if self.peer is not None:
            self.net.bus.publish(DeviceConnected(self.peer.id, self.peer.name))

    def lost_admin(self) -> bool:
        """Whether it logged in as an admin and is no longer one (its key revoked, its device unpaired or
        downgraded to shared trust)."""
        return self._was_admin and self.admin is None

    @property
    def _identity(self) -> object:
        """What its sessions are counted by: its device, else its admin key (over all its connections)."""
        if self.peer is not None:
            return self.peer.id
        return self.admin_key.public_key if self.admin_key is not None else self

    def session_requested(self) -> tuple[asyncssh.SSHServerChannel[bytes], asyncssh.SSHServerProcess[bytes]] | bool:
        """Pairing connections get the pairing subsystem only, one session at a time; paired devices sd-rpc, SFTP
        and scp; an admin (key or full-trust device) at most MAX_OPEN_SESSIONS sessions at once, a shared device
        MAX_OPEN_SESSIONS_SHARED."""
        if self.conn is None or (self.peer is None and self.admin_key is None and not self.pairing):
            return False
        same = [self] if self.pairing else [c for c in self.net._incoming if c._identity == self._identity]
        open_now = sum(len(c._sessions) for c in same)
        limit = 1 if self.pairing else MAX_OPEN_SESSIONS if self.admin is not None else MAX_OPEN_SESSIONS_SHARED
        if open_now >= limit:
            log.warning("refused a session to %s from %s: %d open already", self.who, self.address, open_now)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_RESOURCE_SHORTAGE, f"{open_now} sessions of this key are open already: close one"
            )
        process: asyncssh.SSHServerProcess[bytes]
        if self.pairing:
            process = asyncssh.SSHServerProcess(self.net._pairing_session, None, asyncssh.sftp.MIN_SFTP_VERSION, False)
        elif self.peer is None:  # an admin key is not a device: no SFTP, no scp
            process = asyncssh.SSHServerProcess(self.net._session, None, asyncssh.sftp.MIN_SFTP_VERSION, False)
        else:
            sftp = functools.partial(ConfinedSFTPServer, net=self.net)
            process = asyncssh.SSHServerProcess(self.net._session, sftp, asyncssh.sftp.MIN_SFTP_VERSION, True)
        channel = self.conn.create_server_channel(window=PAIRING_WINDOW if self.pairing else 0)
        _refuse_piling_requests(channel, admin=self.admin is not None)
        closing = asyncio.ensure_future(channel.wait_closed())
        self._sessions.add(closing)
        closing.add_done_callback(self._sessions.discard)
        return channel, process


def _refuse_piling_requests(channel: asyncssh.SSHServerChannel[bytes], admin: bool) -> None:
    """Refuse the channel requests a client may repeat without end, each kept until someone takes it, where nobody
    would: the environment always (no child gets it), window changes, signals and breaks on all but an admin's
    sessions (only the explorer and sd commands read them). asyncssh has no hook for this: its handlers, by name."""
    for request in ("env", *(() if admin else ("window_change", "signal", "break"))):
        setattr(channel, f"_process_{request}_request", _refused)


def _refused(packet: object) -> bool:
    return False


class PeerLink:
    """The one SSH connection to a paired device: made on first use, re-made with backoff when lost."""

    def __init__(self, net: Network, device_id: DeviceId) -> None:
        self.net = net
        self.device_id = device_id
        self.conn: asyncssh.SSHClientConnection | None = None
        self.client: RpcClient | None = None
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self.backoff = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.closed is None

    @property
    def name(self) -> str:
        """The device's name as the errors it sends are said (`beta:/srv/a: no such file or directory`)."""
        return self.client.name if self.client is not None else str(self.device_id)

    async def call(self, method: str, **args: Any) -> Any:
        if self.net.trust.get(self.device_id) is None:  # unpaired, maybe by another process
            await self.close()
            raise NotFound(f"device {self.device_id} is no longer paired with this one: pair it again")
        client = await self.connect()
        try:
            return await client.call(method, **args)
        except NotSent:
            client = await self.connect()
            return await client.call(method, **args)

    async def connect(self) -> RpcClient:
        async with self._lock:
            if self.client is not None and self.client.closed is None:
                return self.client
            peer = self.net.trust.get(self.device_id)
            if peer is None:
                raise NotFound(f"device {self.device_id} is not paired with this one: pair it first")
            self.conn, self.client = await self.net._dial(peer, self._lost)
            hello = await self.client.call("hello", **self.net.introduction())
            said = parse_device_id(hello.get("id")) if isinstance(hello, dict) else None
            if said != peer.id:
                await self.close()
                if said is None:
                    raise NotTrusted(
                        f"{display(peer.name)} answered without a valid device id: is the same sdtui running there?"
                    )
                raise NotTrusted(f"{display(peer.name)} answered as another device: unpair and pair again")
            self.net._renamed(peer.id, hello.get("name"))
            self.net.bus.publish(DeviceConnected(peer.id, (self.net.trust.get(peer.id) or peer).name))
            return self.client

    async def api(self) -> RemoteApi:
        """The paired device's core API, on a channel of this link's connection (its core must trust this one
        fully); Disconnected from its calls once the channel or the link drops."""
        from sdcore.api.client import REMOTE_LIMITS, over

        await self.connect()
        peer = self.net.resolve(self.device_id)
        assert self.conn is not None
        core = f"the core of {display(peer.name)}"
        try:
            writer, reader, errors = await self.conn.open_session(
                subsystem=API_SUBSYSTEM, encoding=None, window=TUNING["window"], max_pktsize=TUNING["max_pktsize"]
            )
        except (OSError, asyncssh.Error) as exc:
            raise DeviceUnreachable(f"cannot reach {core}: {display(str(exc))}") from None
        try:
            return await over(reader, writer, core, limits=REMOTE_LIMITS, ended="the link to it was lost")
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncssh.Error):
            writer.close()
            said = b""
            with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
                said = await asyncio.wait_for(errors.read(500), 2)
            if not said.strip():
                raise DeviceUnreachable(f"{core} did not answer: is the same sdtui running there?") from None
            why = display(said.decode("utf-8", "replace").strip().splitlines()[0])
            raise NotAdmin(f"{core} cannot be used from here: {why}") from None

    def _lost(self, reason: str) -> None:
        peer = self.net.trust.get(self.device_id)
        name = peer.name if peer else ""
        self.net.bus.publish(DeviceLost(self.device_id, name, reason))
        if self.conn is not None:
            self.conn.close()
        if peer is not None and not self.net._closing and reason != "closed":
            if self._retry is None or self._retry.done():
                self._retry = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        for delay in _forever(self.backoff):
            await asyncio.sleep(delay)
            if self.net._closing or self.net.trust.get(self.device_id) is None or self.connected:
                return
            try:
                await self.connect()
                return
            except (NotTrusted, NotFound):
                return  # retrying cannot help: the devices must pair again
            except (SdError, OSError, asyncssh.Error):
                continue

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        if self.client is not None:
            await self.client.close()
        if self.conn is not None:
            self.conn.close()
            await self.conn.wait_closed()
        self.client = self.conn = None


def _forever(delays: tuple[float, ...]) -> Iterable[float]:
    yield from delays
    while True:
        yield delays[-1]


class Network:
    """Everything this device does on the network. Core holds one: `Network(core.device, core.bus)`."""

    def __init__(
        self,
        device: Device,
        bus: EventBus | None = None,
        *,
        auto_accept_drops: bool = False,
        spacedrop_dir: Path | None = None,
    ) -> None:
        self.device = device
        self.bus = bus or EventBus()
        self.trust = TrustStore(device.data_dir)
        self.admins = AdminStore(device.data_dir)
        self.auto_accept_drops = auto_accept_drops
        self.spacedrop_dir = spacedrop_dir or device.data_dir / "spacedrop"
        self.address: str | None = None
        self._server: asyncssh.SSHAcceptor | None = None
        self._incoming: set[_Incoming] = set()
        self._pairing: set[_Incoming] = set()  # connections of the pairing user
        self._logging_in: dict[_Incoming, None] = {}  # oldest first
        self._handles: dict[DeviceId, DeviceHandles] = {}
        self._heavy_threads = asyncio.Semaphore(SERVER_THREADS)  # all devices' heavy requests (DeviceHandles.start)
        self._links: dict[DeviceId, PeerLink] = {}
        self._offer: PairingOffer | None = None
        self._drops: dict[str, asyncio.Future[bool]] = {}
        self._asking: set[DeviceId] = set()  # devices whose Spacedrop waits for an answer
        self._closing = False
        self._sweeper: asyncio.Task[None] | None = None
        self._announcing: asyncio.Task[list[str]] | None = None
        self._addressed: weakref.WeakSet[asyncssh.SSHServerConnection] = weakref.WeakSet()
        self.sweep_interval = 1.0
        self._extensions: dict[str, tuple[Callable[..., Awaitable[Any]], tuple[str, ...]]] = {}
        self.api_server: Callable[[Any, Any, Any], Awaitable[None]] | None = None
        """Serves this core's API over (reader, writer, channel) to admins, as subsystem sd-api (sdcore.net.attach)."""
        self.admin_sessions: AdminSessions | None = None
        self.refusals = RefusalLog(log)
        """Where refused logins and sessions are logged: a flood of them is counted, not written line by line."""

    def serve_programs(self, programs: AdminPrograms) -> None:
        """Run these programs for admins' SSH sessions (the explorer on a pty, `sd` commands); `sd serve` calls it."""
        self.admin_sessions = AdminSessions(programs, self.device.data_dir, self.refusals)

    @property
    def public_key(self) -> str:
        return key_text(self.device.key)

    # --- server -------------------------------------------------------------------------------

    async def start(self, listen: str = f"127.0.0.1:{DEFAULT_PORT}") -> str:
        """Listen for paired devices (and pairing attempts); returns the HOST:PORT actually bound."""
        host, port = parse_address(listen)
        try:
            self._server = await asyncssh.listen(
                host,
                port,
                server_host_keys=[self.device.key],
                server_factory=lambda: _Incoming(self),
                encoding=None,
                gss_host=None,  # no Kerberos logins: a key is the only way in
                agent_forwarding=False,
                keepalive_interval=30,
                login_timeout=30,
                line_editor=False,  # an admin's pty carries the explorer's keys as they are
                **TUNING,
            )
        except OSError as exc:
            raise NetError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; try another --listen"
            ) from None
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        bound = self._server.sockets[0].getsockname()
        shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
        self.address = f"{shown}:{bound[1]}"
        return self.address

    @property
    def port(self) -> int:
        assert self.address is not None, "not listening"
        return parse_address(self.address)[1]

    @property
    def local_address(self) -> str | None:
        """HOST:PORT where a process on this machine reaches the SSH server (None: not listening); a server on
        every interface is reached on loopback, as the host name may not resolve (a container)."""
        if self._server is None:
            return None
        host, port = self._server.sockets[0].getsockname()[:2]
        loopback = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        return f"[{loopback}]:{port}" if ":" in loopback else f"{loopback}:{port}"

    async def close(self) -> None:
        self._closing = True
        for task in (self._sweeper, self._announcing):
            if task is not None:
                task.cancel()
        for link in list(self._links.values()):
            await link.close()
        self._links.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for inc in list(self._incoming):
            if inc.conn is not None:
                inc.conn.close()
        if self.admin_sessions is not None:
            await self.admin_sessions.close()
        if self._offer is not None:
            self._offer.withdraw()

    async def __aenter__(self) -> Network:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _pairing_session(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        if process.subsystem != PAIR_SUBSYSTEM:
            await refuse(
                process, f"sd serve: only pairing is allowed without a key (subsystem {PAIR_SUBSYSTEM})"
            )
            return
        try:
            await self._host_pairing(process, process.get_extra_info("connection"))
        except (asyncssh.Error, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            process.exit(0)
            # one pairing attempt per connection: it ends once the other side has read the last word
            with contextlib.suppress(TimeoutError, asyncssh.Error, ConnectionError):
                await asyncio.wait_for(process.wait_closed(), 5)
            process.get_extra_info("connection").close()

    async def _session(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """A paired device's session: sd-rpc for any; for admins the explorer (a pty) or an `sd` command (exec)."""
        owner: _Incoming = process.get_extra_info("connection").get_owner()
        peer = owner.peer
        if process.subsystem == RPC_SUBSYSTEM and peer is not None:
            await self._rpc_session(process, owner, peer)
        elif process.subsystem == API_SUBSYSTEM:
            await self._api_session(process, owner)
        elif process.subsystem is None and owner.admin is not None:
            await self._admin_session(process, owner)
        elif process.subsystem is None:
            self.refusals.refused(
                owner.who, "refused %s from %s: %s, not an admin", _asked(process), owner.address, owner.who
            )
            await refuse(process, NOT_ADMIN)
        else:
            why = f"sd serve does not offer subsystem {display(process.subsystem)}: it offers sd-rpc, sd-api, sftp and scp"
            self.refusals.refused(owner.who, "refused %s from %s: %s", owner.who, owner.address, why)
            await refuse(process, why)

    async def _admin_session(self, process: asyncssh.SSHServerProcess[bytes], owner: _Incoming) -> None:
        """The explorer or an `sd` command, for an admin: the programs `sd serve` gave, else a one-line refusal."""
        if self.admin_sessions is None:
            self.refusals.refused(
                owner.who, "refused %s from %s: %s, no programs to serve", _asked(process), owner.address, owner.who
            )
            await refuse(
                process,
                f"{self.device.name} offers sftp, scp and sd-rpc here; the explorer and sd commands over SSH "
                "come with `sd serve`",
            )
            return
        await self.admin_sessions.run(process, owner, owner.who, owner.address)

    async def _rpc_session(self, process: asyncssh.SSHServerProcess[bytes], owner: _Incoming, peer: Peer) -> None:
        conn = process.get_extra_info("connection")
        session = RpcSession(
            Confinement(peer.trust, self.trust.shares, self.device.data_dir),
            still_trusted=lambda: self._still_trusted(peer),
            drop=lambda names, sizes: self._offered(peer, names, sizes, owner),
            hello={"id": str(self.device.id), "name": self.device.name, "trust": peer.trust},
            extensions={
                name: functools.partial(handler, peer)
                for name, (handler, levels) in self._extensions.items()
                if peer.trust in levels
            },
            on_hello=lambda client: self._heard_from(peer.id, client, conn),
            device=self.device_handles(peer.id),
        )
        try:
            await session.serve(process.stdin, process.stdout)
            if not self._still_trusted(peer):
                conn.close()
        except (asyncssh.Error, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            process.exit(0)

    async def _api_session(self, process: asyncssh.SSHServerProcess[bytes], owner: _Incoming) -> None:
        """sd-api: this core's API, as its control socket serves it, to an admin (admin key, full-trust device)."""
        if owner.admin is None or self.api_server is None:
            self.refusals.refused(owner.who, "refused the core API to %s from %s: not an admin", owner.who, owner.address)
            why = f"this device is paired with {owner.peer.trust} trust" if owner.peer else "this key is not allowed"
            await refuse(process, f"sd serve: the core API is for admins only (admin keys, devices paired with full "
                          f"trust); {why}")
            return
        log.info("core API opened: %s from %s", owner.who, owner.address)
        try:
            await self.api_server(process.stdin, process.stdout, process.channel)
        except (asyncssh.Error, ConnectionError):
            pass
        except Exception:  # a bug of the API's server: this session ends, the connection's others go on
            log.exception("core API of %s from %s failed", owner.who, owner.address)
        finally:
            log.info("core API closed: %s from %s", owner.who, owner.address)
            process.exit(0)

    def device_handles(self, device_id: DeviceId) -> DeviceHandles:
        """What a paired device holds open here, over all its connections."""
        return self._handles.setdefault(device_id, DeviceHandles(self._heavy_threads))

    async def _sweep(self) -> None:
        """Close incoming connections of devices unpaired meanwhile (by `sd network unpair` elsewhere), and of
        admins who are admins no more (an admin key revoked, a device downgraded to shared trust)."""
        while True:
            await asyncio.sleep(self.sweep_interval)
            for inc in list(self._incoming):
                if inc.peer is not None and not self._still_trusted(inc.peer):
                    inc.cut("the device is no longer paired with this trust")
                elif inc.lost_admin():
                    inc.cut("no longer an admin")

    def _trusted_now(self, peer: Peer) -> Peer | None:
        """The device's pairing as of now (its name may have changed), if it is still with that key and trust."""
        now = self.trust.get(peer.id)
        return now if now is not None and now.public_key == peer.public_key and now.trust == peer.trust else None

    def _still_trusted(self, peer: Peer) -> bool:
        return self._trusted_now(peer) is not None

    def revoke_admin(self, name: str) -> AdminKey:
        """Take an admin key away (by name or fingerprint); its open connections are closed now."""
        key = self.admins.revoke(name)
        for inc in list(self._incoming):
            if inc.admin_key is not None and inc.admin_key.public_key == key.public_key:
                inc.cut("its admin key was revoked")
        return key

    def introduction(self) -> dict[str, Any]:
        """What this device says of itself when it connects to a paired one: its id, name and the port it listens on."""
        said: dict[str, Any] = {"name": self.device.name, "id": str(self.device.id)}
        if self.address is not None:
            said["port"] = self.port
        return said

    def _heard_from(self, device_id: DeviceId, client: dict[str, Any], conn: asyncssh.SSHServerConnection) -> None:
        """Store what a paired device says of itself: its name, and the port it listens on, at the address its
        connection came from (so it can point this device at itself only). A device that paired by joining while
        it did not listen is reached this way once it does."""
        self._renamed(device_id, client.get("name"))
        port, peer = client.get("port"), self.trust.get(device_id)
        came_from = conn.get_extra_info("peername")
        if peer is None or type(port) is not int or not 0 < port < 65536 or not came_from or conn in self._addressed:
            return
        self._addressed.add(conn)  # once a connection: hellos with ever new ports do not rewrite the trust store
        host = str(came_from[0])
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if peer.addresses[:1] != (address,):
            known = (address, *(a for a in peer.addresses if a != address))[:MAX_ADDRESSES]
            self.trust.add(dataclasses.replace(peer, addresses=known))

    def _renamed(self, device_id: DeviceId, name: object) -> None:
        """Store the name a paired device now gives itself (made unique among the devices here)."""
        peer = self.trust.get(device_id)
        if peer is not None and isinstance(name, str) and name.strip():
            unique = self.trust.free_name(name, peer.id, taken=[self.device.name])
            if unique != peer.name:
                self.trust.add(dataclasses.replace(peer, name=unique))
                self.bus.publish(DeviceRenamed(peer.id, unique))  # (the libraries shared with it name it so too)

    def expose(
        self, name: str, handler: Callable[..., Awaitable[Any]], trust: tuple[str, ...] = ("full",)
    ) -> None:
        """Offer `await handler(peer, **args)` to paired devices of these trust levels, as request `name`.

        The other side calls it with `await network.call(device, name, **args)` (msgpack-able values).
        """
        self._extensions[name] = (handler, trust)

    async def call(self, device: str | DeviceId, name: str, **args: Any) -> Any:
        """Call a request a paired device offers with `expose`."""
        return await self.link(device).call("ext", name=name, args=args)

    # --- pairing ------------------------------------------------------------------------------

    def pair_generate(self, trust: str = "full", ttl: float = CODE_TTL) -> str:
        """A fresh 12-word code for the next device that joins; any earlier code stops working.

        The code lasts `ttl` seconds, until one device joined, or until `wait_paired` gives up.
        """
        if trust not in TRUST_LEVELS:
            raise SdError(f"unknown trust level {trust!r}: use one of {', '.join(TRUST_LEVELS)}")
        if self._offer is not None:
            self._offer.withdraw()
        code = new_code()
        self._offer = PairingOffer(code, trust, expires_at=time.monotonic() + ttl)
        self.bus.publish(PairingProgress("waiting", "code generated"))
        return code

    async def wait_paired(self, timeout: float | None = None) -> Peer:
        """Wait for a device to join with the current code; raises PairingError on a failed attempt.

        When it ends without a pairing (timed out, canceled: its command ended) the code is withdrawn.
        """
        offer = self._offer
        if offer is None:
            raise PairingError("no pairing code was generated")
        deadline = max(0.0, offer.expires_at - time.monotonic())
        try:
            peer: Peer = await asyncio.wait_for(
                asyncio.shield(offer.done), min(timeout or deadline, deadline)
            )
        except TimeoutError:
            offer.usable()
            raise PairingError("no device joined before the code expired; generate a new one") from None
        finally:
            if offer.state != "used":
                offer.withdraw()
                if offer.state == "withdrawn":
                    self.bus.publish(PairingProgress("withdrawn", "the pairing code no longer works"))
        return peer

    async def _host_pairing(self, process: asyncssh.SSHServerProcess[bytes], conn: Any) -> None:
        offer = self._offer
        me = {"key": self.public_key, "name": self.device.name, "id": str(self.device.id)}
        self.bus.publish(PairingProgress("joining", "a device is trying the code"))

        def accept(info: dict[str, Any]) -> None:
            assert offer is not None
            if offer.state != "in use":  # withdrawn while the other device was proving the code
                raise PairingError(offer.usable() or "the pairing code was withdrawn")
            peer = self._store(info, offer.trust)
            self.bus.publish(PairingProgress("paired", peer.name))
            if not offer.done.done():
                offer.done.set_result(peer)

        if await host_side(offer, me, process.stdin, process.stdout, accept) is None:
            self.bus.publish(PairingProgress("failed", "a pairing attempt failed"))

    def _store(self, info: dict[str, Any], trust: str) -> Peer:
        key = asyncssh.import_public_key(info["key"])
        device_id = parse_device_id(info.get("id"))
        if device_id is None:
            raise PairingError("the other device sent a malformed device id: is the same sdtui running there?")
        if not id_matches_key(device_id, key_text(key)):
            raise PairingError("the other device claimed a device id that does not belong to its key")
        peer = Peer(
            id=device_id,
            name=self.trust.free_name(str(info["name"]), device_id, taken=[self.device.name]),
            public_key=key_text(key),
            trust=trust,
            addresses=tuple(str(a) for a in info.get("addresses", [])),
        )
        self.trust.add(peer)
        return peer

    async def pair_join(self, code: str | list[str], host: str, trust: str = "full") -> Peer:
        """Join the device at HOST:PORT that shows `code`; on success both trust each other."""
        if trust not in TRUST_LEVELS:
            raise SdError(f"unknown trust level {trust!r}: use one of {', '.join(TRUST_LEVELS)}")
        code = normalize_code(code)
        h, p = parse_address(host)
        try:
            conn = await asyncssh.connect(
                h,
                p,
                username=PAIR_USER,
                known_hosts=None,
                client_keys=None,
                agent_path=None,
                config=None,
                preferred_auth="none",
                connect_timeout=15,
            )
        except (OSError, asyncssh.Error) as exc:
            raise DeviceUnreachable(
                f"cannot reach {h}:{p} to pair: {exc}; is `sd serve` running there?"
            ) from None
        async with conn:
            host_key = conn.get_server_host_key()
            assert host_key is not None
            writer, reader, _ = await conn.open_session(subsystem=PAIR_SUBSYSTEM, encoding=None)
            me = {
                "key": self.public_key,
                "name": self.device.name,
                "id": str(self.device.id),
                "addresses": [self.address] if self.address else [],
            }
            try:
                info = await joiner_side(code, me, key_text(host_key), reader, writer)
            except asyncio.IncompleteReadError:
                raise PairingError("the other device closed the pairing channel") from None
        info["addresses"] = [f"{h}:{p}"]
        peer = self._store(info, trust)
        self.bus.publish(PairingProgress("paired", peer.name))
        return peer

    # --- paired devices -----------------------------------------------------------------------

    def devices(self) -> list[Peer]:
        return self.trust.peers()

    async def announce(self, timeout: float = 5.0) -> list[str]:
        """Tell each reachable paired device this device's name and port now (after a rename, on starting to
        listen); the names of those told.

        The others learn it when they next connect (a connection starts with each side's introduction)."""

        async def tell(peer: Peer) -> str | None:
            try:
                await asyncio.wait_for(self.link(peer.id).call("hello", **self.introduction()), timeout)
                return peer.name
            except (SdError, OSError, asyncssh.Error, TimeoutError):
                return None

        told = await asyncio.gather(*(tell(peer) for peer in self.devices()))
        return [name for name in told if name is not None]

    def announce_soon(self) -> None:
        """`announce` in the background (a device that is off makes it wait)."""
        if self.devices() and self._announcing is None:
            self._announcing = asyncio.get_running_loop().create_task(self.announce())

    def resolve(self, name_or_id: str | DeviceId) -> Peer:
        """A paired device by its id, or by name, id or id prefix as a person writes it."""
        if not isinstance(name_or_id, uuid.UUID):
            return self.trust.resolve(name_or_id)
        peer = self.trust.get(name_or_id)
        if peer is None:
            raise NotFound(f"no paired device with id {name_or_id}: see `sd network devices`, or pair it first")
        return peer

    def device_id_of(self, name_or_id: str) -> DeviceId:
        """This device's or a paired device's id, by name, id or id prefix (what `laptop:/path` names).

        A name or prefix that fits more than one device, this one included, is refused, never guessed.
        """
        here = Peer(id=self.device.id, name=self.device.name, public_key=self.public_key)
        return self.trust.resolve(name_or_id, this_device=here).id

    async def unpair(self, name_or_id: str | DeviceId) -> Peer:
        """Forget a device; its open connections are closed now."""
        peer = self.trust.remove(self.resolve(name_or_id).id)
        link = self._links.pop(peer.id, None)
        if link is not None:
            await link.close()
        for inc in list(self._incoming):
            if inc.peer is not None and inc.peer.id == peer.id:
                inc.cut("the device was unpaired")
        return peer

    def link(self, name_or_id: str | DeviceId) -> PeerLink:
        peer = self.resolve(name_or_id)
        link = self._links.get(peer.id)
        if link is None:
            link = self._links[peer.id] = PeerLink(self, peer.id)
        return link

    async def api_of(self, device: str | DeviceId) -> RemoteApi:
        """A paired device's core API (the same surface as this core's; it must trust this device fully). Its session
        stays open until closed: `core_session` closes it at the end of a block."""
        return await self.link(device).api()

    @contextlib.asynccontextmanager
    async def core_session(self, device: str | DeviceId) -> AsyncIterator[RemoteApi]:
        """`api_of(device)` for the length of a block, its session closed on leaving however the block ends (a device
        allows a few sessions a key at once: one left open each time would make it refuse, and look offline)."""
        core = await self.api_of(device)
        try:
            yield core
        finally:
            await core.close()

    def fs_for(self, device_id: str | DeviceId) -> RemoteFS:
        """The files of a paired device (connects on first use)."""
        return RemoteFS(self.link(device_id))

    async def _dial(self, peer: Peer, on_lost: Any) -> tuple[asyncssh.SSHClientConnection, RpcClient]:
        errors = []
        for address in peer.addresses or ():
            h, p = parse_address(address)
            try:
                conn = await asyncssh.connect(
                    h,
                    p,
                    username=RPC_USER,
                    client_keys=[self.device.key],
                    known_hosts=([peer.key()], [], []),
                    agent_path=None,
                    config=None,
                    preferred_auth="publickey",
                    connect_timeout=10,
                    keepalive_interval=15,
                    **TUNING,
                )
            except asyncssh.HostKeyNotVerifiable:
                raise NotTrusted(
                    f"{display(peer.name)} at {address} presented a host key that is not the one stored when you "
                    "paired: something may be impersonating it. If it was reinstalled, unpair and pair again"
                ) from None
            except asyncssh.PermissionDenied:
                raise NotTrusted(
                    f"{display(peer.name)} refused this device's key: it no longer trusts this device "
                    "(unpaired there?). Pair the two devices again"
                ) from None
            except (OSError, asyncssh.Error) as exc:
                errors.append(f"{address}: {exc}")
                continue
            try:
                writer, reader, _ = await conn.open_session(
                    subsystem=RPC_SUBSYSTEM,
                    encoding=None,
                    window=TUNING["window"],
                    max_pktsize=TUNING["max_pktsize"],
                )
            except (OSError, asyncssh.Error) as exc:
                conn.close()
                errors.append(f"{address}: {exc}")
                continue
            return conn, RpcClient(reader, writer, display(peer.name), on_lost)
        if not errors:
            raise DeviceUnreachable(
                f"cannot reach {display(peer.name)}: it has not said where it listens (it joined the pairing "
                "without a server); run `sd serve` there once: it tells this device"
            )
        raise DeviceUnreachable(
            f"cannot reach {display(peer.name)} ({display('; '.join(errors))}); is `sd serve` running there?"
        )

    # --- Spacedrop ----------------------------------------------------------------------------

    async def _offered(self, peer: Peer, names: list[str], sizes: list[int], via: _Incoming) -> str | None:
        """The folder the offered files go to, None when a person declined; raises when nobody could answer."""
        via.dropping = True
        if not self.auto_accept_drops and peer.id in self._asking:  # one question per device at a time
            raise SdError(
                f"an earlier Spacedrop of yours waits for an answer at {self.device.name}: send again once it has one"
            )
        drop_id = uuid.uuid4().hex[:12]
        self.bus.publish(DropOffered(drop_id, peer.id, peer.name, tuple(names), sum(sizes)))
        if self.auto_accept_drops:
            return str(self.spacedrop_dir)
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._drops[drop_id] = fut
        self._asking.add(peer.id)
        try:
            accepted = await asyncio.wait_for(fut, DROP_ANSWER_TIMEOUT)
        except TimeoutError:
            raise SdError(
                f"nobody at {self.device.name} answered within {DROP_ANSWER_TIMEOUT / 60:.0f} minutes; nothing was sent"
            ) from None
        finally:
            self._drops.pop(drop_id, None)
            self._asking.discard(peer.id)
        return str(self.spacedrop_dir) if accepted else None

    def answer_drop(self, drop_id: str, accept: bool, nobody_to_ask: str | None = None) -> None:
        """Accept or decline a DropOffered event's files.

        `nobody_to_ask`: no person can answer here (a headless core); the sender is told this, not "declined".
        """
        fut = self._drops.get(drop_id)
        if fut is None:
            raise NotFound(f"no pending drop {drop_id}: it was answered already or timed out")
        if fut.done():
            return
        if nobody_to_ask:
            fut.set_exception(SdError(f"nobody at {self.device.name} can accept files: {nobody_to_ask}"))
        else:
            fut.set_result(accept)

    async def drop(self, device: str | DeviceId, paths: list[str]) -> list[str]:
        """Send files to a paired device's Spacedrop folder; returns the names sent.

        Each file is opened before the offer and sent from that descriptor; to a device of `shared` trust never
        one of the data dir (a link the device made in a share this device sends from must not lead it there).
        """
        files = [os.path.abspath(p) for p in paths]
        keep_out = None
        if self.resolve(device).trust != "full":
            keep_out = Confinement("shared", lambda: ["/"], self.device.data_dir)
        opened: list[tuple[int, os.stat_result]] = []
        try:
            for f in files:
                if not os.path.isfile(f):
                    raise NotFound(f"{f}: not a file; Spacedrop sends files")
                flags = os.O_RDONLY | os.O_NONBLOCK  # never hangs on a pipe swapped in
                try:
                    fd = keep_out.open(os.path.realpath(f), flags) if keep_out else os.open(f, flags | os.O_CLOEXEC)
                except OSError as exc:
                    raise fs_error(exc, f) from None
                opened.append((fd, os.fstat(fd)))
                if not stat.S_ISREG(opened[-1][1].st_mode):
                    raise NotFound(f"{f}: not a file; Spacedrop sends files")
            return await self._send_drop(device, files, opened)
        finally:
            for fd, st in opened:
                held.close(fd, st)

    async def _send_drop(
        self, device: str | DeviceId, files: list[str], opened: list[tuple[int, os.stat_result]]
    ) -> list[str]:
        link = self.link(device)
        names = [os.fsencode(os.path.basename(f)) for f in files]
        sizes = [st.st_size for _, st in opened]
        token = await link.call("drop_offer", names=names, sizes=sizes)
        if token is None:
            raise SdError(f"{self.resolve(device).name} declined the files")
        remote = RemoteFS(link)
        for (fd, st), name in zip(opened, names, strict=True):
            # the receiver keeps the file's permissions, never setuid, setgid or sticky
            handle = await link.call("drop_open", drop=token, name=name, mtime=st.st_mtime, mode=st.st_mode & 0o777)
            await remote._send(handle, _chunks(fd))
        return [os.fsdecode(n) for n in names]


async def _chunks(fd: int) -> AsyncIterator[bytes]:
    """What is left to read of the open file `fd`."""
    while chunk := await asyncio.to_thread(os.read, fd, CHUNK):
        yield chunk
