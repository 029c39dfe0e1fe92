"""Connections, the versioned schema, and LISTEN/NOTIFY against a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import anyio
import psycopg
import pytest

from eventsched import JobStateError
from eventsched._postgres import (
    SCHEMA_VERSION,
    Database,
    Listener,
    migrate,
    notify,
    parse_state_url,
    schema_version,
)

pytestmark = pytest.mark.anyio


async def test_schema_is_created_once_and_migrating_again_changes_nothing(state_url: str) -> None:
    """An empty schema gets the tables at the current version; a second migrate is a no-op."""
    target = parse_state_url(state_url)
    database = Database(target)
    with anyio.fail_after(30):
        await database.open()
        try:
            before = await database.run(lambda c: migrate(c, target.schema))
            again = await database.run(lambda c: migrate(c, target.schema))
            version = await database.run(lambda c: schema_version(c, target.schema))
        finally:
            await database.close()
    assert (before, again, version) == (0, SCHEMA_VERSION, SCHEMA_VERSION)


async def test_newer_tables_are_refused(state_url: str) -> None:
    """Tables from a newer eventsched are refused with one line, not used."""
    target = parse_state_url(state_url)
    database = Database(target)
    with anyio.fail_after(30):
        await database.open()
        try:
            await database.run(lambda c: migrate(c, target.schema))
            await database.run(
                lambda c: c.execute(
                    f"UPDATE {target.schema}.meta SET value = '99' WHERE key = 'schema_version'"
                )
            )
            with pytest.raises(JobStateError, match="version 99, newer than this eventsched"):
                await database.run(lambda c: migrate(c, target.schema))
        finally:
            await database.close()


def test_three_processes_creating_the_schema_together_all_succeed(state_url: str) -> None:
    """Three processes migrating an empty schema at the same instant: none fails."""
    program = textwrap.dedent(
        """
        import sys, psycopg
        from eventsched._postgres import migrate, parse_state_url
        target = parse_state_url(sys.argv[1])
        with psycopg.connect(target.conninfo) as connection:
            sys.stdin.readline()  # start together
            print(migrate(connection, target.schema))
        """
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", program, state_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [process.communicate("go\n", timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], results
    # Exactly one found the schema empty; the others found it made.
    assert sorted(int(out) for out, _ in results) == [0, SCHEMA_VERSION, SCHEMA_VERSION]


async def test_unreachable_server_and_bad_credentials_are_one_line_without_password() -> None:
    """Nothing listening, or a role that does not exist: one line, no password in it."""
    for url in (
        "postgresql://someone:hunter2@127.0.0.1:1/test",
        "postgresql://no_such_role_here:hunter2@127.0.0.1:5432/no_such_database",
    ):
        database = Database(parse_state_url(url), connect_timeout=2)
        with anyio.fail_after(30), pytest.raises(JobStateError, match="cannot connect") as caught:
            await database.open()
        message = str(caught.value)
        assert "\n" not in message
        assert "hunter2" not in message
        assert (
            message.startswith("STATE_URL=postgresql://someone:***@") or "no_such_role" in message
        )


async def test_a_notification_wakes_a_listener_when_its_transaction_commits(state_url: str) -> None:
    """NOTIFY in a transaction reaches a listener on its own connection after the commit."""
    target = parse_state_url(state_url)
    database = Database(target)
    listener = Listener(database, "eventsched_test")
    with anyio.fail_after(30):
        await database.open()
        await listener.open()
        try:
            assert await listener.wait(0.05) == []  # nothing yet: the wait times out
            with psycopg.connect(target.conninfo) as other:
                notify(other, "eventsched_test", "job-1")
                # Not committed yet: nothing arrives.
                assert await listener.wait(0.05) == []
            # Leaving the block commits.
            assert await listener.wait(10) == ["job-1"]
        finally:
            await listener.close()
            await database.close()
