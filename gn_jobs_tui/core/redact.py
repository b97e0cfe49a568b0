"""Hide passwords in Redis URLs before they reach a screen or a log."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<pw>[^@/]*)@", re.I)


def redact_url(url: str | None) -> str:
    """`redis://user:secret@host` -> `redis://user:***@host`; query passwords too."""
    if not url:
        return ""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparseable url>"
    if parts.query and "password" in parts.query.lower():
        query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
        text = urlunsplit(parts._replace(query=query))
    return text


def redact_text(text: str, url: str | None) -> str:
    """Remove the password of `url` from any message (errors can echo it)."""
    if not url:
        return text
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    secrets = [p for p in (parts.password,) if p]
    for m in re.finditer(r"(?i)password=([^&]+)", parts.query or ""):
        secrets.append(m.group(1))
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


_QUERY_PW = re.compile(r"(?i)(password=)[^&\s'\"]*")


def hide_passwords(text: str) -> str:
    """Every `scheme://user:secret@` and `password=secret` in free text, hidden.

    For text that may hold URLs, such as a job's command or parameters (a
    database URL with a password), before it is shown.
    """
    if "://" not in text and "password=" not in text.lower():
        return text
    return _QUERY_PW.sub(r"\1***", _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text))
