"""Which server, and what it can do: a URL becomes a client, a topology and capabilities.

`parse_url` checks a URL completely before anything connects, so a bad one is
one clear line (`UrlError`), never a traceback. Topologies: one server
(`redis://`, `rediss://`, `unix://`), Sentinel (`redis+sentinel://h:p[,h:p]/service[/db]`)
and Cluster (`redis+cluster://h:p[,h:p]`, or found by asking a `redis://` node).

redis-py is imported inside the functions that build clients, never at module
level: the supervisor parses URLs here without paying for redis-py.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

from gn_jobs_tui.core.redact import redact_url
from gn_jobs_tui.core.tuples import NamedTuple  # typing's, without importing typing

TYPE_CHECKING = False  # the supervisor imports this module: no run-time `typing`
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PORT = 6379
SENTINEL_PORT = 26379
MIN_VERSION = (6, 0, 0)
KINDS = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
#: URL query options we understand; anything else is a typo worth saying so.
OPTIONS = {"password", "username", "db", "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile",
           "ssl_keyfile", "sentinel_password", "sentinel_username"}
_PREFIX = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$")


class UrlError(ValueError):
    """A server URL or key prefix that cannot be used; the message is one line."""


class ServerTooOld(UrlError):
    """The URL is fine; the server behind it is older than we support (a failure, not usage)."""


class Target(NamedTuple):
    """A parsed server URL: what to connect to, and how.

    A NamedTuple, not a dataclass: the supervisor parses URLs and must not pay
    for `dataclasses` (over a megabyte per running job). `_replace` copies it.
    """

    url: str
    kind: str = "single"  # single | sentinel | cluster
    tls: bool = False
    hosts: tuple[tuple[str, int], ...] = ()
    path: str | None = None  # unix socket
    db: int = 0
    username: str | None = None
    password: str | None = None
    service: str | None = None  # sentinel service (primary) name
    options: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        """Every field but `url` and `password`, and no option's password (`sentinel_password`):
        a repr must never show a secret."""
        options = tuple((k, "***" if "password" in k.lower() else v) for k, v in self.options)
        return (f"Target(kind={self.kind!r}, tls={self.tls!r}, hosts={self.hosts!r}, "
                f"path={self.path!r}, db={self.db!r}, username={self.username!r}, "
                f"service={self.service!r}, options={options!r})")

    @property
    def display(self) -> str:
        """The URL with its password hidden: the only form ever shown or logged."""
        return redact_url(self.url)

    def option(self, name: str, default: str | None = None) -> str | None:
        return dict(self.options).get(name, default)

    @property
    def identity(self) -> str:
        """Names the server without secrets: the same for every URL of it (spool files)."""
        where = self.path or ",".join(f"{h}:{p}" for h, p in self.hosts)
        return f"{self.kind}:{where}/{self.service or ''}/{self.db}"


def _port(text: str, default: int) -> int:
    if text == "":
        return default
    if not text.isdigit():
        raise UrlError(f"bad port {text!r}: a port is a number from 1 to 65535")
    port = int(text)
    if not 1 <= port <= 65535:
        raise UrlError(f"port {port} is out of range (1-65535)")
    return port


def _host_port(item: str, default: int) -> tuple[str, int]:
    item = item.strip()
    if not item:
        raise UrlError("a host is missing in the URL")
    if item.startswith("["):
        end = item.find("]")
        if end < 0:
            raise UrlError("unclosed '[' in an IPv6 address")
        host, rest = item[1:end], item[end + 1:]
        if rest and not rest.startswith(":"):
            raise UrlError(f"unexpected {rest!r} after an IPv6 address")
        return host, _port(rest[1:], default)
    if item.count(":") > 1:
        raise UrlError("an IPv6 address must be written in brackets, e.g. [::1]:6379")
    host, _, port = item.partition(":")
    if not host:
        raise UrlError("a host is missing in the URL")
    return host, _port(port, default)


def _db(text: str) -> int:
    text = text.strip("/")
    if text == "":
        return 0
    if not text.isdigit() or int(text) > 1_000_000:
        raise UrlError(f"bad database number {text!r}")
    return int(text)


def parse_url(url: str | None) -> Target:
    """Check a server URL completely; raise UrlError with one clear line."""
    if url is None or not url.strip():
        raise UrlError("the server URL is empty")
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UrlError(f"not a server URL: {redact_url(url)!r} (expected redis://, rediss://, "
                       "unix://, redis+sentinel:// or redis+cluster://)")
    scheme = scheme.lower()
    if scheme not in KINDS:
        raise UrlError(f"unknown URL scheme {scheme + '://'!r} (expected redis://, rediss://, "
                       "unix://, redis+sentinel:// or redis+cluster://)")
    kind, tls = KINDS[scheme]
    netloc_path, _, query = rest.partition("?")
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in OPTIONS:
            raise UrlError(f"unknown URL option {name!r} (known: {', '.join(sorted(OPTIONS))})")
        options[name] = value
    if scheme == "unix":
        userinfo, at, path = netloc_path.partition("@") if "@" in netloc_path.split("/", 1)[0] \
            else ("", "", netloc_path)
        if not path.startswith("/"):
            raise UrlError("a unix:// URL needs an absolute socket path, e.g. unix:///run/redis.sock")
        hosts: tuple[tuple[str, int], ...] = ()
        sock: str | None = unquote(path)
        db = _db(options.pop("db", "0"))
        service = None
    else:
        netloc, _, path = netloc_path.partition("/")
        userinfo, at, hostpart = netloc.rpartition("@")
        if not at:
            userinfo, hostpart = "", netloc
        default = SENTINEL_PORT if kind == "sentinel" else DEFAULT_PORT
        if not hostpart:
            raise UrlError("a host is missing in the URL")
        items = hostpart.split(",")
        if kind == "single" and len(items) > 1:
            raise UrlError("several hosts need redis+sentinel:// or redis+cluster://")
        hosts = tuple(_host_port(i, default) for i in items)
        sock = None
        service = None
        if kind == "sentinel":
            service, _, db_text = path.partition("/")
            if not service:
                raise UrlError("a redis+sentinel:// URL names its service: "
                               "redis+sentinel://host:26379/mymaster[/db]")
            db = _db(db_text or options.pop("db", "0"))
        else:
            db = _db(path or options.pop("db", "0"))
            if kind == "cluster" and db != 0:
                raise UrlError("a cluster has only database 0")
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    username = options.pop("username", None) or username
    password = options.pop("password", None) or password
    return Target(url=url, kind=kind, tls=tls, hosts=hosts, path=sock, db=db, username=username,
                  password=password, service=service,
                  options=tuple(sorted(options.items())))


def validate_prefix(prefix: str | None) -> str:
    """A key prefix: letters, digits and `_.:-`, no glob characters (SCAN patterns use it)."""
    if prefix is None or not prefix.strip():
        raise UrlError("the key prefix is empty")
    if not _PREFIX.match(prefix) or prefix.endswith(":"):
        raise UrlError(f"bad key prefix {prefix[:40]!r}: use letters, digits and _ . : - "
                       "(no spaces, no glob characters, not ending in ':')")
    return prefix


# -- capabilities ------------------------------------------------------------------


class Caps:
    """What one server can do, found once per connection (HELLO, then INFO).

    A plain class with slots, not a dataclass, so the supervisor never imports
    `dataclasses`; it compares by value and is unhashable, as the dataclass was.
    """

    __slots__ = ("name", "version", "cluster", "scripting", "keyspace", "maxmemory", "policy",
                 "used_memory", "info_allowed", "learnt")

    def __init__(self, name: str = "redis", version: tuple[int, int, int] = MIN_VERSION,
                 cluster: bool = False, scripting: bool = True, keyspace: bool | None = None,
                 maxmemory: int = 0, policy: str = "", used_memory: int = 0,
                 info_allowed: bool = True, learnt: dict[str, bool] | None = None) -> None:
        self.name = name
        self.version = version
        self.cluster = cluster
        #: False once the server or the ACL user refused a script: reads use pipelines.
        self.scripting = scripting
        #: False once a keyspace-notification subscription was refused.
        self.keyspace = keyspace
        self.maxmemory = maxmemory
        self.policy = policy
        self.used_memory = used_memory
        self.info_allowed = info_allowed
        #: What trying taught us when INFO was not allowed (None: go by the version).
        self.learnt: dict[str, bool] = {} if learnt is None else learnt

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, like the dataclass

    def __repr__(self) -> str:
        return "Caps(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"

    def _at_least(self, version: tuple[int, int]) -> bool:
        return self.name == "valkey" or self.version[:2] >= version

    def _has(self, name: str, version: tuple[int, int]) -> bool:
        if name in self.learnt:
            return self.learnt[name]
        # Version unknown (no INFO): assume a current server, learn from a refusal.
        return self._at_least(version) or not self.info_allowed

    @property
    def eval_ro(self) -> bool:
        """EVAL_RO / EVALSHA_RO (Redis 7.0)."""
        return self._has("eval_ro", (7, 0))

    @property
    def zmscore(self) -> bool:
        """ZMSCORE (Redis 6.2)."""
        return self._has("zmscore", (6, 2))

    @property
    def exclusive_ranges(self) -> bool:
        """XRANGE with an exclusive `(id` start (Redis 6.2)."""
        return self._at_least((6, 2))

    @property
    def label(self) -> str:
        if not self.info_allowed:
            return f"{self.name.capitalize()} (version not readable: INFO not allowed)"
        return f"{self.name.capitalize()} {'.'.join(map(str, self.version))}"

    @property
    def can_evict(self) -> bool:
        """A maxmemory policy that deletes keys: jobs and indexes may vanish."""
        return bool(self.policy) and self.policy != "noeviction"

    @property
    def memory_fraction(self) -> float | None:
        if not self.maxmemory:
            return None
        return self.used_memory / self.maxmemory

    def warnings(self) -> list[str]:
        """Risks to the data, worth a red word in the top bar and `server status`."""
        out = []
        if self.can_evict:
            out.append(f"maxmemory-policy {self.policy} can evict jobs")
        frac = self.memory_fraction
        if frac is not None and frac >= 0.9:
            out.append(f"memory {frac * 100:.0f}% of maxmemory")
        return out

    def degradations(self) -> list[str]:
        """Features this server or user does not allow, and what we do instead."""
        out = []
        if not self.scripting:
            out.append("reads without scripts")
        elif not self.eval_ro:
            out.append("scripts without EVAL_RO")
        if self.keyspace is False:
            out.append("no keyspace events")
        if not self.info_allowed:
            out.append("no INFO: memory unknown")
        return out


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _version(text: str) -> tuple[int, int, int]:
    parts = [int(p) if p.isdigit() else 0 for p in re.split(r"[.\-]", text)[:3]]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


def caps_from_info(info: dict[str, Any], caps: Caps | None = None) -> Caps:
    """Fold INFO (server, memory, cluster sections, parsed by redis-py) into capabilities."""
    caps = caps or Caps()
    if info.get("valkey_version"):
        caps.name, caps.version = "valkey", _version(str(info["valkey_version"]))
    elif info.get("redis_version"):
        caps.version = _version(str(info["redis_version"]))
    if "cluster_enabled" in info:
        caps.cluster = bool(int(info["cluster_enabled"]))
    caps.maxmemory = int(info.get("maxmemory", 0) or 0)
    caps.policy = str(info.get("maxmemory_policy", "") or "")
    caps.used_memory = int(info.get("used_memory", 0) or 0)
    return caps


def no_hello(exc: BaseException, target: Target | None) -> ServerTooOld | None:
    """Redis before 6.0 has no HELLO, which the client sends first: say the version needed."""
    text = str(exc).lower()
    if "unknown command" in text and "hello" in text:
        where = target.display if target else "the server"
        return ServerTooOld(f"{where} is older than Redis 6.0 (it has no HELLO); gn-jobs needs Redis "
                        f"{'.'.join(map(str, MIN_VERSION[:2]))} or newer, or Valkey 7 or newer")
    return None


def check_version(caps: Caps, target: Target) -> None:
    """A server older than the minimum gets one clear line naming what is needed."""
    if caps.name != "valkey" and caps.version < MIN_VERSION:
        raise ServerTooOld(f"{target.display} runs {caps.label}; gn-jobs needs Redis "
                       f"{'.'.join(map(str, MIN_VERSION[:2]))} or newer, or Valkey 7 or newer")


# -- clients ---------------------------------------------------------------------------


def _common(target: Target, timeout: float, name: str) -> dict[str, Any]:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kw: dict[str, Any] = {"username": target.username, "password": target.password,
                          "socket_timeout": timeout, "socket_connect_timeout": timeout,
                          "client_name": name}
    if target.kind != "cluster":
        # Our loops decide what a failure means (the CLI fails in one line at once,
        # the console and supervisors back off): no silent retries underneath.
        kw["retry"] = Retry(NoBackoff(), 0)
    if target.tls:
        kw["ssl"] = True
        for opt in ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
            if target.option(opt):
                kw[opt] = target.option(opt)
    return kw


def sync_client(target: Target, *, timeout: float = 5.0, name: str = "gn-jobs") -> Any:
    """A redis-py client for the target's topology (Redis, Sentinel primary, or Cluster)."""
    import redis

    kw = _common(target, timeout, name)
    if target.kind == "cluster":
        from redis.cluster import ClusterNode, RedisCluster

        kw.pop("client_name")
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.hosts], **kw)
    if target.kind == "sentinel":
        from redis.sentinel import Sentinel

        sentinel = Sentinel(list(target.hosts), sentinel_kwargs=_sentinel_kwargs(target, timeout),
                            **{k: v for k, v in kw.items() if k.startswith(("ssl", "socket"))})
        kw.pop("socket_timeout")
        return sentinel.master_for(target.service or "", db=target.db, socket_timeout=timeout,
                                   health_check_interval=30, **kw)
    if target.path:
        kw = {k: v for k, v in kw.items() if not k.startswith("ssl")}
        return redis.Redis(unix_socket_path=target.path, db=target.db, health_check_interval=30,
                           **kw)
    host, port = target.hosts[0]
    return redis.Redis(host=host, port=port, db=target.db, health_check_interval=30, **kw)


def async_client(target: Target, *, timeout: float = 5.0, name: str = "gn-jobs-console") -> Any:
    """The redis.asyncio client for the target's topology (the console's)."""
    import redis.asyncio as aioredis

    kw = _common(target, timeout, name)
    if target.kind == "cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        kw.pop("client_name")
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.hosts], **kw)
    if target.kind == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        sentinel = Sentinel(list(target.hosts), sentinel_kwargs=_sentinel_kwargs(target, timeout),
                            **{k: v for k, v in kw.items() if k.startswith(("ssl", "socket"))})
        kw.pop("socket_timeout")
        return sentinel.master_for(target.service or "", db=target.db, socket_timeout=timeout,
                                   **kw)
    if target.path:
        kw = {k: v for k, v in kw.items() if not k.startswith("ssl")}
        return aioredis.Redis(unix_socket_path=target.path, db=target.db,
                              health_check_interval=30, **kw)
    host, port = target.hosts[0]
    return aioredis.Redis(host=host, port=port, db=target.db, health_check_interval=30, **kw)


def _sentinel_kwargs(target: Target, timeout: float) -> dict[str, Any]:
    kw: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if target.option("sentinel_password"):
        kw["password"] = target.option("sentinel_password")
        kw["username"] = target.option("sentinel_username")
    return kw


# -- errors as one line -------------------------------------------------------------------


def _is(exc: BaseException, name: str) -> bool:
    """`exc` is redis-py's exception of that name (or a subclass), without importing redis-py."""
    return any(cls.__name__ == name and cls.__module__.startswith("redis")
               for cls in type(exc).__mro__)


def describe_error(exc: BaseException, target: Target | None = None) -> str:
    """One line for an error met while talking to a server; never a password.

    The error may be redis-py's (the console) or wire's (the CLI): `errors`
    names both kinds.
    """
    from gn_jobs_tui.core import errors

    where = target.display if target else "the server"
    text = str(exc) or type(exc).__name__
    low = text.lower()
    if isinstance(exc, UrlError):
        msg = text
    elif (old := no_hello(exc, target)) is not None:
        msg = str(old)
    elif _is(exc, "AuthenticationError") or "wrongpass" in low \
            or "invalid password" in low or "auth" in low and "required" in low:
        msg = f"{where} refused the user name or password"
    elif isinstance(exc, errors.timeout()) and target is not None and target.tls \
            or target is not None and target.tls and "handshake" in low and "timed out" in low:
        msg = f"no TLS handshake with {where} in time (a plain port? use redis:// for it)"
    elif isinstance(exc, errors.timeout()):
        msg = f"no answer from {where} in time (is it paused or overloaded?)"
    elif "ssl" in low or "tls" in low or "wrong version number" in low:
        msg = f"TLS failed with {where}: {text} (rediss:// for a TLS port, redis:// for a plain one)"
    elif isinstance(exc, errors.loading()):
        msg = f"{where} is loading its data set; try again shortly"
    elif _is(exc, "InvalidResponse") or isinstance(exc, (*errors.unreachable(), OSError)) \
            and ("protocol" in low or "invalid response" in low):
        msg = f"{where} does not speak the Redis protocol (an HTTP server? a TLS port?)"
    elif isinstance(exc, (*errors.unreachable(), OSError)):
        msg = f"cannot reach {where}: {text}"
    elif isinstance(exc, errors.no_permission()) or text.startswith("NOPERM"):
        msg = f"{where} refused: {text} (the ACL user lacks a permission)"
    elif isinstance(exc, errors.reply()):
        msg = f"{where} refused: {text}"
    else:
        msg = f"{type(exc).__name__}: {text}"
    msg = " ".join(msg.split())
    if target and target.password:
        msg = msg.replace(target.password, "***")
    return msg
