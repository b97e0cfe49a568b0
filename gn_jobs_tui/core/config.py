"""Which server and prefix to use: options, then env, then the embedded server.

Both are checked before anything connects: a malformed URL or prefix is a
one-line `UrlError`, never a traceback and never a silent fallback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from gn_jobs_tui.core.connection import Target, parse_url, validate_prefix
from gn_jobs_tui.core.keys import DEFAULT_PREFIX
from gn_jobs_tui.core.redact import redact_url

ENV_URL = "GN_JOBS_REDIS_URL"
ENV_PREFIX = "GN_JOBS_PREFIX"


@dataclass(frozen=True)
class Config:
    url: str
    prefix: str = DEFAULT_PREFIX
    read_only: bool = False
    embedded: bool = False
    target: Target = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", parse_url(self.url))
        validate_prefix(self.prefix)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden: the only form shown or logged."""
        return redact_url(self.url)


def resolve(url: str | None, prefix: str | None, read_only: bool = False) -> Config:
    """Named server, else GN_JOBS_REDIS_URL, else start or reuse the embedded one.

    `url`/`prefix` are what the user typed (None: not given). An empty value
    typed on purpose is an error, not a reason to fall back to a default.
    """
    if url is None:
        url = os.environ.get(ENV_URL) or None
    if prefix is None:
        prefix = os.environ.get(ENV_PREFIX) or DEFAULT_PREFIX
    validate_prefix(prefix)
    if url is not None:
        parse_url(url)  # raises UrlError for an empty or malformed URL
        return Config(url, prefix, read_only, embedded=False)
    from gn_jobs_tui.core.server import EmbeddedServer

    return Config(EmbeddedServer.default().ensure(), prefix, read_only, embedded=True)
