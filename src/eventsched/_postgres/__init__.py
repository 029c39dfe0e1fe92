"""PostgreSQL for the job store: the URL, the connections, the tables, the wake-ups.

Imported only when a ``postgresql://`` state URL is used: it needs psycopg, which the
``postgres`` extra installs (``pip install 'eventsched[postgres]'``).
"""

from __future__ import annotations

from ._database import Database
from ._notify import Listener, notify
from ._schema import SCHEMA_VERSION, migrate, schema_version
from ._store import PostgresJobStore
from ._url import DEFAULT_SCHEMA, PostgresTarget, parse_state_url, redact

__all__ = [
    "DEFAULT_SCHEMA",
    "SCHEMA_VERSION",
    "Database",
    "Listener",
    "PostgresJobStore",
    "PostgresTarget",
    "migrate",
    "notify",
    "parse_state_url",
    "redact",
    "schema_version",
]
