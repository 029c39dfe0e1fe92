"""A PostgreSQL server for the tests, and a schema of its own for each test.

The server is ``EVENTSCHED_TEST_POSTGRES_URL`` or the local one on 127.0.0.1:5432.
Where none answers, the tests skip with one line saying how to get one, except in CI
(``CI=true``), where a missing server fails the run: there the tests must run.
A test that stops or restarts its server has a private one (``cluster``, see
:mod:`postgres._cluster`), under the same rule.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from conftest import logging_to
from postgres._cluster import Cluster, ClusterUnavailable, find_bindir

psycopg = pytest.importorskip("psycopg", reason="needs psycopg: uv sync (the dev group has it)")

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("EVENTSCHED_TEST_POSTGRES_URL", DEFAULT_URL)
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        reason = f"no PostgreSQL at {url.split('@')[-1]} ({' '.join(str(exc).split())[:120]})"
        _unavailable(f"{reason}: set EVENTSCHED_TEST_POSTGRES_URL or start a local PostgreSQL")
    return url


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the PostgreSQL tests")
    pytest.skip(reason)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A private PostgreSQL server, started, for a test that stops or restarts it;
    stopped and removed at teardown whatever happened."""
    bindir = find_bindir()
    if bindir is None:
        _unavailable("no PostgreSQL server programs (initdb, pg_ctl) for a private server")
    assert bindir is not None
    server = Cluster(bindir)
    try:
        try:
            server.create()
        except ClusterUnavailable as exc:
            _unavailable(f"cannot start a private PostgreSQL server: {exc}")
        yield server
    finally:
        server.destroy()


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema name, dropped (with everything in it) after the test."""
    name = f"es_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def state_url(postgres_url: str, schema: str) -> str:
    separator = "&" if "?" in postgres_url else "?"
    return f"{postgres_url}{separator}schema={schema}"


@pytest.fixture
def messages() -> Iterator[list[tuple[str, str]]]:
    """(level, message) of what eventsched logs during the test."""
    found: list[tuple[str, str]] = []
    with logging_to(
        lambda m: found.append((m.record["level"].name, m.record["message"])), level="DEBUG"
    ):
        yield found
