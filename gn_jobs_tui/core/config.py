"""Which server and prefix to use: options, then env, then the embedded server."""

from __future__ import annotations

import os
from dataclasses import dataclass

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

    @property
    def display_url(self) -> str:
        """The URL with any password hidden: the only form shown or logged."""
        return redact_url(self.url)


def resolve(url: str | None, prefix: str | None, read_only: bool = False) -> Config:
    """Named server, else GN_JOBS_REDIS_URL, else start or reuse the embedded one."""
    url = url or os.environ.get(ENV_URL) or None
    prefix = prefix or os.environ.get(ENV_PREFIX) or DEFAULT_PREFIX
    if url:
        return Config(url, prefix, read_only, embedded=False)
    from gn_jobs_tui.core.server import EmbeddedServer

    return Config(EmbeddedServer.default().ensure(), prefix, read_only, embedded=True)
