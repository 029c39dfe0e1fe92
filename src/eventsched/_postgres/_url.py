"""A PostgreSQL state URL: parsed once, checked, and shown without its password.

``postgresql://user:password@host:5432/db?schema=name`` (or ``postgres://``). The
``schema`` parameter is ours, not libpq's: the PostgreSQL schema holding eventsched's
tables (default ``eventsched``), so that several deployments, or tests, can share one
database. Everything else is handed to libpq as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .. import JobStateError

__all__ = ["DEFAULT_SCHEMA", "PostgresTarget", "parse_state_url", "redact"]

DEFAULT_SCHEMA: Final = "eventsched"

# A plain identifier: no quoting games in the SQL we build with it.
_SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SHOWN: Final = 80


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    """Where to connect, and which schema holds the tables."""

    conninfo: str
    """The URL for libpq, without our own ``schema`` parameter."""
    schema: str
    """The PostgreSQL schema of eventsched's tables."""

    def __str__(self) -> str:
        return redact(self.conninfo)

    def __repr__(self) -> str:  # never the password, even in a traceback
        return f"PostgresTarget({redact(self.conninfo)!r}, schema={self.schema!r})"


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the netloc and in the query)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, host = netloc.rpartition("@")
        user, sep, _password = credentials.partition(":")
        netloc = f"{user}:***@{host}" if sep else f"{credentials}@{host}"
    query = [
        (key, "***" if key.lower() == "password" else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    shown = urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), ""))
    return shown if len(shown) <= _SHOWN else shown[: _SHOWN - 3] + "..."


def parse_state_url(url: str) -> PostgresTarget:
    """Check a ``postgresql://`` URL; :class:`JobStateError` (one line) if it cannot be used."""
    if "\0" in url:
        raise JobStateError("STATE_URL contains a NUL character")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (reading it is the check: a bad port raises ValueError)
    except ValueError as exc:
        raise JobStateError(f"STATE_URL={redact(url)!r}: not a valid URL ({exc})") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise JobStateError(
            f"STATE_URL={redact(url)!r}: expected a postgresql://user@host:port/database URL"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = DEFAULT_SCHEMA
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_NAME.fullmatch(schema):
        raise JobStateError(
            f"STATE_URL={redact(url)!r}: schema={schema[:40]!r} must be a lower-case "
            "identifier (letters, digits, _; at most 63)"
        )
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))
    return PostgresTarget(conninfo, schema)
