"""A small blocking Redis client for the supervisor: RESP2 over a socket, parsed by hiredis.

Why not redis-py: importing it pulls asyncio, ssl, logging and
importlib.metadata, about 17 MB and 200 ms in every supervisor, one per
running job. The supervisor needs little: commands and pipelines, scripts
(EVALSHA, NOSCRIPT -> EVAL), one pub/sub channel polled without blocking,
and errors it can tell apart, because it survives every one of them.

Topologies: one server (tcp, unix, TLS), Sentinel (ask the sentinels for the
primary; ask again after a lost connection or READONLY) and Cluster (slot map
from CLUSTER SLOTS; MOVED -> refresh and retry; ASK -> ASKING). Every command
the supervisor sends touches at most one key, so nothing is cross-slot.
"""

from __future__ import annotations

import _socket  # not `socket`: see _connect
import select

import hiredis

from gn_jobs_tui.core.connection import Target

TYPE_CHECKING = False  # one supervisor per running job: no run-time `typing`
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

Address = tuple[str, int] | str  # (host, port) or a unix socket path


class WireError(Exception):
    """Anything that kept a command from getting its answer."""


class ConnectionLost(WireError):
    """No connection, or it broke: whether the last commands ran is unknown."""


class Timeout(ConnectionLost):
    """No reply in time. The connection is dropped: its replies would arrive out of step."""


class ReplyError(WireError):
    """An error reply from the server; `kind` is its first word (ERR, LOADING, OOM, ...)."""

    kind = "ERR"


class Loading(ReplyError):
    kind = "LOADING"


class OutOfMemory(ReplyError):
    kind = "OOM"


class ReadOnly(ReplyError):
    kind = "READONLY"


class NoScript(ReplyError):
    kind = "NOSCRIPT"


class NoPerm(ReplyError):
    kind = "NOPERM"


class Misconf(ReplyError):
    kind = "MISCONF"


class Busy(ReplyError):
    kind = "BUSY"


class Redirect(ReplyError):
    """MOVED or ASK: the slot lives on another node."""

    @property
    def slot(self) -> int:
        return int(str(self).split()[1])

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = str(self).split()[2].rpartition(":")
        return host.strip("[]"), int(port)


class Moved(Redirect):
    kind = "MOVED"


class Ask(Redirect):
    kind = "ASK"


_KINDS: dict[str, type[ReplyError]] = {c.kind: c for c in (
    Loading, OutOfMemory, ReadOnly, NoScript, NoPerm, Misconf, Busy, Moved, Ask)}


def classify(message: str) -> ReplyError:
    """The typed error for an error reply. A script's failing call keeps its kind
    even when the server wraps it ("ERR Error running script ... -OOM ...")."""
    word = message.split(" ", 1)[0]
    cls = _KINDS.get(word)
    if cls is None and "script" in message.lower():
        for kind in ("OOM", "READONLY", "NOPERM", "MISCONF", "LOADING"):
            if f"-{kind} " in message or f": {kind} " in message:
                cls = _KINDS[kind]
                break
    if cls is None:
        err = ReplyError(message)
        err.kind = word if word.isupper() else "ERR"
        return err
    return cls(message)


class _Raw(Exception):
    """What hiredis builds for an error reply; turned into a typed one after."""


def encode(args: Sequence[Any]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode("utf-8", "surrogateescape")
        elif isinstance(arg, float):
            data = repr(arg).encode()
        else:
            data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def sha1_hex(text: str) -> str:
    """A script's id. CPython's own SHA-1 when present: hashlib would load OpenSSL (~4 MB RSS)."""
    try:
        import _sha1

        return _sha1.sha1(text.encode()).hexdigest()
    except ImportError:
        import hashlib

        return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - Redis's script id


class Script:
    """A Lua script sent as EVALSHA; on NOSCRIPT (e.g. after a restart) as EVAL, which caches it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = sha1_hex(source)

    def cmd(self, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def with_source(self, cmd: tuple[Any, ...]) -> tuple[Any, ...]:
        return ("EVAL", self.source, *cmd[2:])


#: Scripts by sha, so a pipeline can resend one as EVAL after NOSCRIPT.
_SCRIPTS: dict[str, Script] = {}


def script(source: str) -> Script:
    found = Script(source)
    return _SCRIPTS.setdefault(found.sha, found)


class Conn:
    """One socket to one server, with its handshake (AUTH, SELECT, CLIENT SETNAME)."""

    def __init__(self, address: Address, target: Target, name: str, timeout: float,
                 db: int = 0) -> None:
        self.address, self.target, self.name, self.timeout, self.db = address, target, name, timeout, db
        self.sock: _socket.socket | None = None
        self.reader: Any = None

    def open(self) -> None:
        try:
            if isinstance(self.address, str):
                sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.address)
            elif self.target.tls:
                sock = _connect_tls(self.address, self.target, self.timeout)
            else:
                sock = _connect(self.address, self.timeout)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect: {exc}") from None
        self.sock = sock
        self.reader = hiredis.Reader(replyError=_Raw)
        hello: list[tuple[Any, ...]] = []
        if self.target.password is not None:
            hello.append(("AUTH", self.target.username or "default", self.target.password)
                         if self.target.username else ("AUTH", self.target.password))
        if self.db:
            hello.append(("SELECT", self.db))
        if self.name:
            hello.append(("CLIENT", "SETNAME", self.name))
        for cmd, reply in zip(hello, self.execute(hello), strict=True):
            if isinstance(reply, ReplyError) and cmd[0] != "CLIENT":  # a name is only a courtesy
                self.close()
                raise reply

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass  # closing a broken socket: nothing more to do with it
        self.sock = None

    @property
    def is_open(self) -> bool:
        return self.sock is not None

    def stale(self) -> bool:
        """Readable while no reply is awaited: the server closed it (a restart, an idle
        timeout) or sent what we did not ask for. Either way it is no use."""
        return self.sock is not None and bool(select.select([self.sock], [], [], 0)[0])

    def send(self, cmds: Sequence[Sequence[Any]]) -> None:
        if self.sock is None:
            self.open()
        assert self.sock is not None
        try:
            self.sock.sendall(b"".join(encode(c) for c in cmds))
        except OSError as exc:
            self.close()
            raise ConnectionLost(f"connection lost while sending: {exc}") from None

    def read(self) -> Any:
        """One reply; an error reply is returned as a typed ReplyError, not raised."""
        assert self.sock is not None
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.close()  # not a Redis server (an HTTP port?): nothing more to read from it
                raise ConnectionLost(f"invalid response, not the Redis protocol: {exc}") from None
            if reply is not False:
                return classify(str(reply)) if isinstance(reply, _Raw) else reply
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                self.close()
                raise Timeout(f"no reply within {self.timeout:g}s") from None
            except OSError as exc:
                self.close()
                raise ConnectionLost(f"connection lost while reading: {exc}") from None
            if not data:
                self.close()
                raise ConnectionLost("connection closed by the server")
            self.reader.feed(data)

    def execute(self, cmds: Sequence[Sequence[Any]]) -> list[Any]:
        if not cmds:
            return []
        self.send(cmds)
        return [self.read() for _ in cmds]


def _connect(address: tuple[str, int], timeout: float) -> _socket.socket:
    """`socket.create_connection` on `_socket`, the C module: `socket` itself turns the C
    module's constants into enums on import, 0.23 MB RSS in every supervisor. Each address
    the name resolves to is tried in turn; the last failure is raised."""
    host, port = address
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"{host} resolves to no address")


def _connect_tls(address: tuple[str, int], target: Target, timeout: float) -> Any:
    """A TLS connection (an `ssl.SSLSocket`), with `socket` and `ssl` imported only here:
    they cost memory every other supervisor saves."""
    import socket
    import ssl

    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    host = address[0]
    ctx = ssl.create_default_context(cafile=target.option("ssl_ca_certs"))
    reqs = (target.option("ssl_cert_reqs") or "required").lower()
    if reqs in ("none", "optional"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE if reqs == "none" else ssl.CERT_OPTIONAL
    if target.option("ssl_certfile"):
        ctx.load_cert_chain(target.option("ssl_certfile") or "", target.option("ssl_keyfile"))
    try:
        return ctx.wrap_socket(sock, server_hostname=host)
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        raise ConnectionLost(f"TLS failed: {exc}") from None


# -- cluster slots ----------------------------------------------------------------------


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), as Redis Cluster hashes keys."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ byte) & 0xFF]
    return crc


def key_slot(key: bytes | str) -> int:
    """The cluster slot of a key; a non-empty `{tag}` hashes the tag only."""
    data = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return crc16(data) % 16384


_NO_KEY = {"PING", "TIME", "SCRIPT", "CLIENT", "PUBLISH", "AUTH", "SELECT", "INFO", "CLUSTER",
           "ASKING", "SUBSCRIBE"}


def key_of(cmd: Sequence[Any]) -> Any:
    """The one key a command touches (None for none): what routes it in a cluster."""
    name = str(cmd[0]).upper() if not isinstance(cmd[0], bytes) else cmd[0].decode().upper()
    if name in ("EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"):
        return cmd[3] if int(cmd[2]) > 0 else None
    if name in _NO_KEY or len(cmd) < 2:
        return None
    return cmd[1]


# -- the client -------------------------------------------------------------------------


class Client:
    """Commands and pipelines against the target's topology. Not thread-safe: one user."""

    def __init__(self, target: Target, *, name: str = "gn-jobs-supervisor",
                 timeout: float = 5.0) -> None:
        self.target, self.name, self.timeout = target, name, timeout
        self._conns: dict[Address, Conn] = {}
        self._primary: Address | None = None  # single server / sentinel primary
        self._slots: list[Address | None] = []  # cluster: slot -> node
        self._sentinel: Conn | None = None  # the sentinel that answered last

    # -- where to send ------------------------------------------------------------------
    def _conn(self, address: Address) -> Conn:
        conn = self._conns.get(address)
        if conn is None:
            conn = self._conns[address] = Conn(address, self.target, self.name, self.timeout,
                                               0 if self.target.kind == "cluster" else self.target.db)
        return conn

    def _single(self) -> Address:
        if self._primary is None:
            if self.target.kind == "sentinel":
                self._primary = self._ask_sentinels()
            elif self.target.path:
                self._primary = self.target.path
            else:
                self._primary = self.target.hosts[0]
        return self._primary

    def _ask_sentinels(self) -> Address:
        """The current primary, from the first sentinel that knows it (its connection is kept)."""
        password = self.target.option("sentinel_password")
        user = self.target.option("sentinel_username")
        last: Exception | None = None
        hosts = list(self.target.hosts)
        if self._sentinel is not None and self._sentinel.address in hosts:
            hosts.remove(self._sentinel.address)  # type: ignore[arg-type]
            hosts.insert(0, self._sentinel.address)  # type: ignore[arg-type] # last answerer first
        for host, port in hosts:
            conn = self._sentinel
            if conn is None or conn.address != (host, port):
                stub = Target(url="", kind="single", tls=self.target.tls, hosts=((host, port),),
                              username=user if password else None, password=password,
                              options=self.target.options)
                conn = Conn((host, port), stub, "", self.timeout)
            try:
                reply = conn.execute([("SENTINEL", "get-master-addr-by-name", self.target.service)])[0]
            except WireError as exc:
                conn.close()
                last = exc
                continue
            if isinstance(reply, list) and len(reply) == 2:
                if self._sentinel is not conn and self._sentinel is not None:
                    self._sentinel.close()
                self._sentinel = conn
                return reply[0].decode(), int(reply[1])
            conn.close()
            last = ReplyError(f"sentinel {host}:{port} does not know {self.target.service!r}")
        raise ConnectionLost(f"no sentinel named the primary: {last}")

    def verify_primary(self) -> bool:
        """Sentinel: ask again who the primary is; True when it moved (we follow it).

        After a failover the old primary may take writes for a while before the
        sentinels turn it into a replica (and its data is then replaced): asking
        often keeps that window short. Other topologies: always False.
        """
        if self.target.kind != "sentinel" or self._primary is None:
            return False
        now = self._ask_sentinels()
        if now == self._primary:
            return False
        self._forget(self._primary)
        self._primary = now
        return True

    def _forget(self, address: Address) -> None:
        conn = self._conns.pop(address, None)
        if conn is not None:
            conn.close()
        if address == self._primary:
            self._primary = None  # sentinel: ask again next time
        if self.target.kind == "cluster":
            self._slots = []

    def _refresh_slots(self) -> None:
        last: Exception | None = None
        seeds = list(dict.fromkeys([*(a for a in self._conns if not isinstance(a, str)),
                                    *self.target.hosts]))
        for address in seeds:
            try:
                reply = self._conn(address).execute([("CLUSTER", "SLOTS")])[0]
            except ConnectionLost as exc:
                self._forget(address)
                last = exc
                continue
            if isinstance(reply, ReplyError):
                last = reply
                continue
            slots: list[Address | None] = [None] * 16384
            for start, end, master, *_ in reply:
                node = (master[0].decode() or address[0], int(master[1]))  # type: ignore[index]
                for s in range(int(start), int(end) + 1):
                    slots[s] = node
            self._slots = slots
            return
        raise ConnectionLost(f"no cluster node answered CLUSTER SLOTS: {last}")

    def _route(self, cmd: Sequence[Any]) -> Address:
        if self.target.kind != "cluster":
            return self._single()
        if not self._slots:
            self._refresh_slots()
        key = key_of(cmd)
        node = self._slots[key_slot(key)] if key is not None else next(
            (n for n in self._slots if n is not None), None)
        if node is None:
            raise ConnectionLost("the cluster serves no node for this slot")
        return node

    # -- commands -----------------------------------------------------------------------
    def pipeline(self, cmds: Sequence[Sequence[Any]]) -> list[Any]:
        """Send commands together; replies in order, error replies as ReplyError values.

        Raises ConnectionLost/Timeout when a connection breaks (which of the
        commands ran is then unknown: only send commands safe to repeat). A
        script that met NOSCRIPT did not run; it runs again (as EVAL) after the
        rest of its pipeline, so send a script alone when order matters.
        """
        cmds = [tuple(c) for c in cmds]
        groups: dict[Address, list[int]] = {}
        for i, cmd in enumerate(cmds):
            groups.setdefault(self._route(cmd), []).append(i)
        replies: list[Any] = [None] * len(cmds)
        for address, idx in groups.items():
            try:
                got = self._conn(address).execute([cmds[i] for i in idx])
            except ConnectionLost:
                self._forget(address)
                raise
            for i, reply in zip(idx, got, strict=True):
                replies[i] = reply
        for i, reply in enumerate(replies):
            if isinstance(reply, ReplyError):
                replies[i] = self._recover(cmds[i], reply)
        return replies

    def _recover(self, cmd: tuple[Any, ...], err: ReplyError, depth: int = 0) -> Any:
        """Answer the errors that have a cure: NOSCRIPT, MOVED, ASK, READONLY (sentinel)."""
        if depth > 3:
            return err
        if isinstance(err, NoScript) and cmd[0] == "EVALSHA" and cmd[1] in _SCRIPTS:
            cmd = _SCRIPTS[cmd[1]].with_source(cmd)
            return self._retry(cmd, self._route(cmd), depth)
        if isinstance(err, Moved):
            self._refresh_slots()  # the slots moved: learn the new map, answer from the new owner
            return self._retry(cmd, err.address, depth)
        if isinstance(err, Ask):
            conn = self._conn(err.address)
            try:
                reply = conn.execute([("ASKING",), cmd])[1]
            except ConnectionLost:
                self._forget(err.address)
                raise
            return self._recover(cmd, reply, depth + 1) if isinstance(reply, ReplyError) else reply
        if isinstance(err, ReadOnly) and self.target.kind == "sentinel" and self._primary:
            self._forget(self._primary)  # a failover: ask the sentinels again next time
        return err

    def _retry(self, cmd: tuple[Any, ...], address: Address, depth: int) -> Any:
        try:
            reply = self._conn(address).execute([cmd])[0]
        except ConnectionLost:
            self._forget(address)
            raise
        return self._recover(cmd, reply, depth + 1) if isinstance(reply, ReplyError) else reply

    def call(self, *cmd: Any) -> Any:
        """One command; an error reply is raised."""
        reply = self.pipeline([cmd])[0]
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def eval(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return self.call(*script.cmd(keys, args))

    def drop_stale(self) -> None:
        """Close connections found stale, so the next command opens a fresh one instead of
        failing on a socket the server closed while it sat idle (nothing is resent)."""
        for address, conn in list(self._conns.items()):
            if conn.stale():
                self._forget(address)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
        self._primary = None
        if self._sentinel is not None:
            self._sentinel.close()
            self._sentinel = None

    def subscribe(self, channel: str) -> Subscription:
        return Subscription(self, channel)


class Subscription:
    """One pub/sub channel on a connection of its own, polled without blocking."""

    def __init__(self, client: Client, channel: str) -> None:
        self.client, self.channel = client, channel
        self.conn: Conn | None = None

    def _open(self) -> Conn:
        address = self.client._route(("PUBLISH", self.channel))
        conn = Conn(address, self.client.target, self.client.name, self.client.timeout,
                    0 if self.client.target.kind == "cluster" else self.client.target.db)
        reply = conn.execute([("SUBSCRIBE", self.channel)])[0]
        if isinstance(reply, ReplyError):
            conn.close()
            raise reply
        return conn

    @property
    def fresh(self) -> bool:
        """True when the next poll opens a new connection (messages may have been missed)."""
        return self.conn is None or not self.conn.is_open

    def poll(self) -> list[bytes]:
        """Messages that have arrived; never waits. Raises ConnectionLost when the link broke."""
        if self.fresh:
            self.conn = self._open()
        conn = self.conn
        assert conn is not None and conn.sock is not None
        out: list[bytes] = []
        while True:
            reply = conn.reader.gets()
            if reply is not False:
                if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                    out.append(reply[2])
                continue
            pending = getattr(conn.sock, "pending", lambda: 0)()
            if not pending and not select.select([conn.sock], [], [], 0)[0]:
                return out
            try:
                data = conn.sock.recv(65536)
            except OSError as exc:
                conn.close()
                raise ConnectionLost(f"subscription lost: {exc}") from None
            if not data:
                conn.close()
                raise ConnectionLost("subscription closed by the server")
            conn.reader.feed(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
