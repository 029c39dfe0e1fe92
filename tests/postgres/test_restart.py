"""A real PostgreSQL server restarted, then down for a while, under two schedulers.

Two schedulers (two stores, as two processes would have) share a schema on a private
server (``cluster``: the shared one serves the other tests meanwhile). Three jobs every
50 ms. The server is restarted (``pg_ctl restart -m fast``), then stopped for longer
than the lease and than a backoff step, and started again. Asserted: no fire time runs
twice; every fire time from a job's first claim to its last ran or was reported missed
(``gaps`` of test_processes); both schedulers reconnect by themselves and run again
within a bound; nobody is presumed dead for the downtime (no ``interrupted`` report);
B's listener is back (a job resumed in A after the outage, A gone before it is due,
runs in B on time, B never polling meanwhile); the user saw a warning per outage and
no traceback.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import psycopg
import pytest

from conftest import logging_to
from eventsched import Event, EventScheduler, EventType, PostgresJobStore, SavedJob
from eventsched._postgres._database import Database
from eventsched._postgres._url import parse_state_url
from jobs.jobtools import Recorder
from postgres._cluster import Cluster
from postgres.test_processes import STEP, gaps
from postgres.test_store import fires

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SCHEMA = "es_restart"
JOBS = [f"tick{n}" for n in range(3)]
#: Seconds the server stays down: longer than the lease, and than the longest backoff
#: step (2 s), so that the schedulers' retries and a presumption of death both show.
DOWN = 3.5
LEASE = 3.0
#: B hears of changes only through NOTIFY within the test (its polls are a minute apart).
NEVER = 60.0
#: How long after the server is back the schedulers must be running again.
RECOVERY = 6.0


async def noop() -> None:
    await anyio.lowlevel.checkpoint()


@pytest.fixture
def records() -> Iterator[list[dict[str, Any]]]:
    """What eventsched logs during the test: level, message, component, traceback."""
    found: list[dict[str, Any]] = []

    def keep(message: Any) -> None:
        record = message.record
        found.append(
            {
                "level": record["level"].name,
                "message": record["message"],
                "component": record["extra"].get("component"),
                "exception": record["exception"] is not None,
                "at": time.monotonic(),
            }
        )

    with logging_to(keep, level="DEBUG"):
        yield found


def reported(events: list[Event]) -> set[tuple[str, datetime]]:
    """Every fire time a JOB_MISSED event accounts for (the unlisted ones as a range:
    a report lists its first ten)."""
    found: set[tuple[str, datetime]] = set()
    for event in events:
        data = event.data
        listed = [datetime.fromisoformat(at) for at in data["fire_times"]]
        found |= {(data["job_id"], at) for at in listed}
        if data["count"] > len(listed):
            at, last = listed[-1], datetime.fromisoformat(data["last_fire_time"])
            while (at := at + STEP) <= last:
                found.add((data["job_id"], at))
    return found


def listening(url: str, process: str) -> bool:
    """Whether ``process``'s listener has said LISTEN on the server (since it started)."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND query LIKE 'LISTEN%%'",
            [f"eventsched {process}"[:63]],
        ).fetchone()
    return row is not None and row[0] > 0


async def until(condition: Any, limit: float) -> None:
    """Wait (bounded) for a condition that no event announces, checking every 20 ms."""
    with anyio.fail_after(limit):
        # The server announces none of these conditions.
        while not await anyio.to_thread.run_sync(condition):  # noqa: ASYNC110
            await anyio.sleep(0.02)


def started_since(recorder: Recorder, since: datetime) -> int:
    return sum(
        1
        for e in recorder.of(EventType.JOB_STARTED)
        if datetime.fromisoformat(e.data["fire_time"]) > since
    )


async def test_the_server_restarted_and_down_for_a_while_costs_no_duplicate_nor_silent_gap(
    cluster: Cluster, records: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{cluster.url}?schema={SCHEMA}"
    a_store = PostgresJobStore(url, lease=LEASE, poll_interval=0.5)
    b_store = PostgresJobStore(url, lease=LEASE, poll_interval=NEVER)
    schedulers = []
    for store in (a_store, b_store):
        scheduler = EventScheduler()
        scheduler.configure_jobs(store=store)
        for job_id in JOBS:
            scheduler.add_job(
                noop, "interval", seconds=STEP.total_seconds(), id=job_id, max_instances=100
            )
        schedulers.append(scheduler)
    a, b = schedulers
    a_seen, b_seen = Recorder(a), Recorder(b)
    outages: list[tuple[float, float]] = []  # (server gone, server back), monotonic

    async def outage(action: Any) -> None:
        gone = time.monotonic()
        await anyio.to_thread.run_sync(action)
        back = time.monotonic()
        outages.append((gone, back))
        since = datetime.now(UTC)
        # Both run again, by themselves, within the bound.
        for seen in (a_seen, b_seen):
            await seen.wait_for(lambda s=seen: started_since(s, since) >= 3, limit=RECOVERY)

    def down_for_a_while() -> None:
        cluster.stop()
        time.sleep(DOWN)  # the outage itself (a server thread, not the event loop)
        cluster.start()

    with anyio.fail_after(90):
        async with b:
            async with a:
                await a_seen.wait_count(EventType.JOB_COMPLETED, 10, limit=20)
                await b_seen.wait_count(EventType.JOB_COMPLETED, 1, limit=20)
                await outage(cluster.restart)
                await outage(down_for_a_while)
                # B listens again: a change made now reaches it through NOTIFY alone.
                await until(lambda: listening(cluster.url, b_store.process), limit=RECOVERY)
                run_date = datetime.now(UTC) + timedelta(seconds=2)
                for scheduler in (b, a):
                    scheduler.add_job(noop, "date", run_date=run_date, id="wake", paused=True)
                await b.jobs.flush_state()
                await a.jobs.flush_state()
                a.resume_job("wake")
                await a.jobs.flush_state()
                a.stop()
            assert datetime.now(UTC) < run_date, "A outlived the fire time: no test"
            await b_seen.wait_count(EventType.JOB_STARTED, 1, limit=10, job_id="wake")
            lateness = datetime.now(UTC) - run_date  # at most: the run started before
            b.stop()

    assert lateness < timedelta(seconds=0.5), lateness
    events = [*a_seen.events, *b_seen.events]
    started = [
        (e.data["job_id"], e.data["fire_time"]) for e in events if e.type == EventType.JOB_STARTED
    ]
    assert len(started) == len(set(started)), "a fire time ran twice"
    rows = [row for row in fires(cluster.url, SCHEMA) if row[0] in JOBS]
    claimed = {(j, t) for j, t, _ in rows}
    ran = {(j, datetime.fromisoformat(t)) for j, t in started if j in JOBS}
    assert ran <= claimed
    missed = [e for e in events if e.type == EventType.JOB_MISSED]
    assert [e.data for e in missed if e.data["reason"] == "interrupted"] == []
    found = gaps(rows, reported(missed))
    assert found == [], found[:5]
    # Unfinished rows only for claims given back at the stops (never run).
    assert {o for _, _, o in rows} <= {"ended", None}
    assert not {(j, t) for j, t, o in rows if o is None} & ran
    # What the user saw: a warning while the server was away, and no traceback storm.
    assert not [r for r in records if r["exception"] or r["level"] in {"ERROR", "CRITICAL"}]
    postgres = [r for r in records if r["component"] == "postgres"]
    for gone, back in outages:
        during = [r for r in postgres if gone <= r["at"] <= back + RECOVERY]
        assert any(r["level"] == "WARNING" for r in during), (gone, back, postgres)
    warnings = [r for r in postgres if r["level"] == "WARNING"]
    # One per outage per kind of work (queries, watching) per store, not one per retry
    # nor one per query waiting.
    assert len(warnings) <= 2 * 2 * len(outages), [r["message"] for r in warnings]
    # Nothing logged by psycopg itself: its pool logged a warning per reconnection
    # attempt (a storm in the user's logs during an outage), beside ours.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []


T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2, T3 = T1 + STEP, T1 + 2 * STEP


@asynccontextmanager
async def store_on(url: str, **options: Any) -> AsyncIterator[PostgresJobStore]:
    store = PostgresJobStore(url, **options)
    with anyio.fail_after(30):
        await store.lock()
        await store.load()
    try:
        yield store
    finally:
        with anyio.fail_after(30):
            await store.close()


def admin(cluster: Cluster, *statements: str) -> list[Any]:
    """Run statements as the server's superuser (autocommit); the first column of each.
    Its commits never wait for a synchronous standby (see the test below)."""
    found = []
    local = "-c synchronous_commit=local"
    with psycopg.connect(cluster.url, autocommit=True, options=local) as connection:
        for statement in statements:
            cursor = connection.execute(statement)
            row = cursor.fetchone() if cursor.description else None
            found.append(None if row is None else row[0])
    return found


async def test_a_server_down_for_longer_than_the_lease_presumes_nobody_dead(
    cluster: Cluster,
) -> None:
    """Both processes are alive, one with a claim in progress; the server is down for
    longer than the lease. The first poll after it is back must not report the other's
    claim interrupted: the outage was the server's silence, not the process's."""
    url = f"{cluster.url}?schema=es_down"
    async with store_on(url, lease=1.0) as one, store_on(url, lease=1.0) as two:
        await one.save({"a": SavedJob("f", None, T1)})
        assert await one.save({"a": SavedJob("f", T1, T2, (T1,))}) == frozenset()
        await anyio.to_thread.run_sync(cluster.stop)
        await anyio.sleep(1.5)  # the outage itself: longer than the lease
        await anyio.to_thread.run_sync(cluster.start)
        with anyio.fail_after(30):
            polled = await two.poll(["a"])
        assert polled.interrupted == {}
        with anyio.fail_after(30):
            await one.poll(["a"])  # back within the lease: beats, its claim its own
        assert fires(cluster.url, "es_down") == [("a", T1, None)]


async def test_a_claim_whose_commit_answer_is_lost_is_known_committed(cluster: Cluster) -> None:
    """The connection dies during COMMIT, after the server committed a claim; before the
    claiming process gets through again, another moves the job's row on. Repeating the
    work would be refused (the row is no longer the one it wrote) and leave the claim
    committed but unknown to its process: never run, never reported while it lives.
    Asked, the server says it committed: the save stands, the claim is its process's."""
    url = f"{cluster.url}?schema=es_commit"
    victim = f"postgresql://victim@127.0.0.1:{cluster.port}/postgres?schema=es_commit"
    admin(cluster, "CREATE ROLE victim LOGIN SUPERUSER")
    async with store_on(url) as two, store_on(victim) as one:
        await one.save({"a": SavedJob("f", None, T1)})
        await two.poll(["a"])
        two.rebase("a", *_row(cluster, "es_commit"))
        try:
            outcome = await _lose_the_commit_answer(cluster, one, two)
        finally:  # else the stores' last commits wait for ever
            admin(
                cluster,
                "ALTER ROLE victim LOGIN",
                "ALTER SYSTEM RESET synchronous_standby_names",
                "SELECT pg_reload_conf()",
            )
        assert outcome == [frozenset()]
        assert one.owns("a", T1)
    assert _claims(cluster, "es_commit") == [(T1, one.process), (T2, two.process)]


async def _lose_the_commit_answer(
    cluster: Cluster, one: PostgresJobStore, two: PostgresJobStore
) -> list[frozenset[str]]:
    """One claims T1; its connection is ended while its COMMIT waits; two moves the row
    on before one can reconnect. What one's save returned."""
    # Every COMMIT now waits for a synchronous standby that never comes: the server
    # has committed locally, and answers only once the wait ends.
    admin(
        cluster,
        "ALTER SYSTEM SET synchronous_standby_names = 'nobody'",
        "SELECT pg_reload_conf()",
    )
    await until(lambda: _commits_wait(cluster), limit=10)
    outcome: list[frozenset[str]] = []

    async def claim() -> None:
        outcome.append(await one.save({"a": SavedJob("f", T1, T2, (T1,))}))

    name = f"eventsched {one.process}"[:63]
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(claim)
            await until(lambda: _waiting(cluster, name) is not None, limit=10)
            pid = _waiting(cluster, name)
            # One stays out (its reconnection refused) until two has moved on.
            admin(
                cluster,
                "ALTER ROLE victim NOLOGIN",
                f"SELECT pg_terminate_backend({pid})",
                "ALTER SYSTEM RESET synchronous_standby_names",
                "SELECT pg_reload_conf()",
            )
            polled = await two.poll(["a"])
            assert polled.versions, "the claim did not commit: no test"
            two.rebase("a", polled.versions["a"], polled.rows["a"])
            assert await two.save({"a": SavedJob("f", T2, T3, (T2,))}) == frozenset()
            admin(cluster, "ALTER ROLE victim LOGIN")
    return outcome


def _row(cluster: Cluster, schema: str) -> tuple[int, SavedJob]:
    with psycopg.connect(cluster.url) as connection:
        row = connection.execute(
            "SELECT version, fingerprint, last_fire_time, next_fire_time, paused"
            f" FROM {schema}.jobs"
        ).fetchone()
    assert row is not None
    return int(row[0]), SavedJob(row[1], row[2], row[3], (), row[4])


def _claims(cluster: Cluster, schema: str) -> list[tuple[datetime, str]]:
    with psycopg.connect(cluster.url) as connection:
        rows = connection.execute(
            f"SELECT fire_time, claimed_by FROM {schema}.fires ORDER BY 1"
        ).fetchall()
    return [(t, str(p)) for t, p in rows]


def _waiting(cluster: Cluster, application_name: str) -> int | None:
    """The server process of that connection if its COMMIT waits for a standby."""
    with psycopg.connect(cluster.url) as connection:
        row = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event = 'SyncRep'",
            [application_name],
        ).fetchone()
    return None if row is None else int(row[0])


def _commits_wait(cluster: Cluster) -> bool:
    """Whether the reloaded setting has reached the server: a probe's COMMIT waits
    (then it is ended, committed locally: it wrote only a WAL message)."""
    probe = psycopg.connect(cluster.url, application_name="probe")
    try:
        probe.execute("SELECT pg_logical_emit_message(true, %s, %s)", ["probe", "x"])
        done = threading.Event()

        def commit() -> None:
            with contextlib.suppress(psycopg.OperationalError):
                probe.commit()
            done.set()

        threading.Thread(target=commit, daemon=True).start()
        if done.wait(0.2):
            return False  # committed at once: not yet
        pid = None
        while pid is None and not done.is_set():
            pid = _waiting(cluster, "probe")
        if pid is not None:
            admin(cluster, f"SELECT pg_terminate_backend({pid})")
        done.wait(10)
        return True
    finally:
        probe.close()


async def test_a_work_returning_none_whose_commit_answer_is_lost_is_not_done_again(
    cluster: Cluster,
) -> None:
    """The server committed, the answer was lost, and the work's own result is None:
    that is "committed" too, not "aborted, do it again" (an INSERT done twice would show)."""
    admin(cluster, "CREATE TABLE once (n int)")
    database = Database(parse_state_url(cluster.url), application_name="once", retry_for=30)

    def insert(connection: psycopg.Connection[tuple[object, ...]]) -> None:
        connection.execute("INSERT INTO once VALUES (1)")

    await database.open()
    try:
        admin(
            cluster,
            "ALTER SYSTEM SET synchronous_standby_names = 'nobody'",
            "SELECT pg_reload_conf()",
        )
        try:
            await until(lambda: _commits_wait(cluster), limit=10)
            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    group.start_soon(database.run, insert)
                    await until(lambda: _waiting(cluster, "once") is not None, limit=10)
                    pid = _waiting(cluster, "once")
                    admin(
                        cluster,
                        f"SELECT pg_terminate_backend({pid})",
                        "ALTER SYSTEM RESET synchronous_standby_names",
                        "SELECT pg_reload_conf()",
                    )
        finally:
            admin(
                cluster, "ALTER SYSTEM RESET synchronous_standby_names", "SELECT pg_reload_conf()"
            )
    finally:
        await database.close()
    assert admin(cluster, "SELECT count(*) FROM once") == [1]
