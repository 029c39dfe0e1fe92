"""Schedulers sharing one schema, in one test process: wake-ups, leases, definitions.

Each scheduler has a store of its own (as a process would); they share the tables.
A store whose poll interval is a minute hears of a change within the test's bound only
through NOTIFY.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import psycopg
import pytest

from eventsched import EventScheduler, EventType, PostgresJobStore, SavedJob
from eventsched._postgres._store import Polled
from jobs.jobtools import Recorder
from postgres.test_store import age_heartbeat, fires, opened

pytestmark = pytest.mark.anyio

#: No poll within a test: only a NOTIFY can bring a change in time.
NEVER = 60.0


def shared(url: str, **options: Any) -> EventScheduler:
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=PostgresJobStore(url, **options))
    return scheduler


async def noop() -> None:
    await anyio.lowlevel.checkpoint()


async def until(condition: Any, limit: float = 10.0) -> None:
    """Wait (bounded) for a condition that no event announces, checking every 10 ms."""
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 (no event announces these conditions)
            await anyio.sleep(0.01)


async def test_a_job_resumed_in_one_process_fires_on_time_in_another(state_url: str) -> None:
    """B holds the job paused; A resumes it and stops before it is due: B, which never
    polls within the test, hears of it through NOTIFY and fires it on time."""
    run_date = datetime.now(UTC) + timedelta(seconds=1.0)
    b = shared(state_url, poll_interval=NEVER)
    b.add_job(noop, "date", run_date=run_date, id="j", paused=True)
    seen = Recorder(b)
    a = shared(state_url, poll_interval=NEVER)
    a.add_job(noop, "date", run_date=run_date, id="j", paused=True)
    with anyio.fail_after(30):
        async with b:
            async with a:
                assert a.get_job("j").paused  # as the shared row says
                a.resume_job("j")
                await a.jobs.flush_state()
                a.stop()
            assert datetime.now(UTC) < run_date, "A outlived the fire time: no test"
            [started] = await seen.wait_count(EventType.JOB_STARTED, 1, limit=10)
            b.stop()
    assert started.data["fire_time"] == run_date.isoformat()
    assert started.timestamp - run_date < timedelta(seconds=0.5)


async def test_a_pause_in_one_process_pauses_the_job_in_the_others(state_url: str) -> None:
    a, b = shared(state_url, poll_interval=NEVER), shared(state_url, poll_interval=NEVER)
    for scheduler in (a, b):
        scheduler.add_job(noop, "interval", seconds=3600, id="j")
    with anyio.fail_after(30):
        async with a, b:
            a.pause_job("j")
            await until(lambda: b.get_job("j").paused)
            b.resume_job("j")
            await until(lambda: not a.get_job("j").paused)
            a.stop()
            b.stop()


class CountingStore(PostgresJobStore):
    """Counts its polls, so that a test can wait until each store has looked again."""

    __slots__ = ("polls",)

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.polls = 0

    async def poll(self, jobs: Any) -> Polled:
        found = await super().poll(jobs)
        self.polls += 1
        return found


T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(seconds=1)


@asynccontextmanager
async def killed_claim(state_url: str, schema: str, job_id: str) -> AsyncIterator[str]:
    """A process that claimed ``T1`` of ``job_id`` and was killed (lock gone, heartbeat
    older than the lease); yields its id."""
    dead = PostgresJobStore(state_url)
    with anyio.fail_after(30):
        await dead.lock()
        await dead.load()
        await dead.save({job_id: SavedJob("other", None, T1)})
        await dead.save({job_id: SavedJob("other", T1, T1 + timedelta(hours=1), (T1,))})
    session = dead._session
    assert session is not None
    session.close()
    age_heartbeat(state_url, schema, dead.process)
    try:
        yield dead.process
    finally:
        with anyio.fail_after(30):
            await dead._database.close()


async def test_live_processes_report_a_dead_ones_run_once(state_url: str, schema: str) -> None:
    """Two running schedulers poll; one of them reports the dead process's run."""
    stores = [CountingStore(state_url, poll_interval=0.05) for _ in range(2)]
    schedulers = []
    for store in stores:
        scheduler = EventScheduler()
        scheduler.configure_jobs(store=store)
        scheduler.add_job(noop, "interval", seconds=3600, id="a")
        schedulers.append(scheduler)
    recorders = [Recorder(s) for s in schedulers]
    with anyio.fail_after(30):
        async with schedulers[0], schedulers[1]:
            async with killed_claim(state_url, schema, "a"):
                await until(lambda: any(r.of(EventType.JOB_MISSED) for r in recorders))
                counts = [s.polls for s in stores]
                # Both have looked twice more since: neither reports it again.
                await until(
                    lambda: all(s.polls >= n + 2 for s, n in zip(stores, counts, strict=True))
                )
            for scheduler in schedulers:
                scheduler.stop()
    reports = [e for r in recorders for e in r.of(EventType.JOB_MISSED)]
    assert len(reports) == 1
    assert reports[0].data["reason"] == "interrupted"
    assert list(reports[0].data["fire_times"]) == [T1.isoformat()]
    assert ("a", T1, "interrupted") in fires(state_url, schema)


async def test_a_process_is_not_presumed_dead_within_its_lease(state_url: str, schema: str) -> None:
    """Lock lost (its connection cut) but a fresh heartbeat: its runs are not taken."""
    async with opened(state_url) as cut, opened(state_url) as other:
        await cut.load()
        await cut.save({"a": SavedJob("f", None, T1)})
        await cut.save({"a": SavedJob("f", T1, T1 + timedelta(hours=1), (T1,))})
        session = cut._session
        assert session is not None
        session.close()  # its lock is gone; its heartbeat is a moment old
        assert (await other.poll(["a"])).interrupted == {}
        # It reconnects (its next poll): lock and heartbeat again, even once aged.
        await cut.check_session()
        age_heartbeat(state_url, schema, cut.process)
        assert (await other.poll(["a"])).interrupted == {}
        assert (await cut.poll(["a"])).interrupted == {}
    assert fires(state_url, schema) == [("a", T1, None)]


async def test_a_poll_hands_over_only_rows_others_changed(state_url: str) -> None:
    async with opened(state_url) as one, opened(state_url) as two:
        await one.load()
        await two.load()
        await one.save({"a": SavedJob("f", None, T1)})
        assert (await one.poll(["a"])).rows == {}  # its own write
        polled = await two.poll(["a"])
        assert polled.rows == {"a": SavedJob("f", None, T1, paused=False)}
        assert (await two.poll(["a"])).rows == {}  # handed over once


async def test_definitions_disagreeing_the_last_written_wins_and_the_other_stands_by(
    state_url: str, messages: list[tuple[str, str]]
) -> None:
    """A rolling deploy: the new definition (B, started last) fires; A warns once and
    stops firing the job, rather than the two taking turns."""
    a, b = shared(state_url, poll_interval=0.05), shared(state_url, poll_interval=0.05)
    a.add_job(noop, "interval", seconds=0.05, id="j")
    b.add_job(noop, "interval", seconds=0.07, id="j")
    seen_a, seen_b = Recorder(a), Recorder(b)
    with anyio.fail_after(30):
        async with a:
            await seen_a.wait_count(EventType.JOB_COMPLETED, 2, limit=10)
            async with b:
                await until(lambda: a.get_job("j").paused)
                standing_by = len(seen_a.of(EventType.JOB_STARTED))
                await seen_b.wait_count(EventType.JOB_COMPLETED, 5, limit=10)
                assert len(seen_a.of(EventType.JOB_STARTED)) == standing_by
                a.stop()
                b.stop()
    warnings = [m for level, m in messages if level == "WARNING" and "definition" in m]
    assert len(warnings) == 1, warnings
    assert "the definition written last wins" in warnings[0]
    assert not b.get_job("j").paused


class GatedStore(PostgresJobStore):
    """Returns from load() only once every store of its gate has loaded: the schedulers
    then plan their first pass from the same row."""

    __slots__ = ("gate", "saves")

    def __init__(self, url: str, gate: list[Any], **options: Any) -> None:
        super().__init__(url, **options)
        self.gate = gate  # [stores still to load, anyio.Event]
        self.saves = 0

    async def save(self, changes: Any) -> frozenset[str]:
        refused = await super().save(changes)
        self.saves += 1
        return refused

    async def load(self) -> dict[str, SavedJob]:
        found = await super().load()
        self.gate[0] -= 1
        if self.gate[0] == 0:
            self.gate[1].set()
        await self.gate[1].wait()
        return found


async def test_a_backlog_is_coalesced_once_across_processes(state_url: str, schema: str) -> None:
    """The shared row is 20 fire times behind and two processes plan from it at once:
    one run and one report in all (the loser drops the misses it planned)."""
    first = shared(state_url)
    first.add_job(noop, "interval", seconds=3600, id="j")
    with anyio.fail_after(30):
        async with first:
            first.stop()
    behind = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=20)
    with psycopg.connect(state_url.split("?")[0]) as connection:
        connection.execute(f"UPDATE {schema}.jobs SET next_fire_time = %s", [behind])
    gate: list[Any] = [2, anyio.Event()]
    schedulers = []
    recorders = []
    stores = [GatedStore(state_url, gate, poll_interval=NEVER) for _ in range(2)]
    for store in stores:
        scheduler = EventScheduler()
        scheduler.configure_jobs(store=store)
        scheduler.add_job(noop, "interval", seconds=3600, id="j")
        recorders.append(Recorder(scheduler))
        schedulers.append(scheduler)
    done = anyio.Event()

    async def run(scheduler: EventScheduler) -> None:
        async with scheduler:
            await done.wait()
            await scheduler.jobs.flush_state()
            scheduler.stop()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for scheduler in schedulers:
                group.start_soon(run, scheduler)
            await until(lambda: sum(len(r.of(EventType.JOB_COMPLETED)) for r in recorders) == 1)
            # Both first passes are over: each has saved its claim (won or refused).
            await until(lambda: all(store.saves >= 1 for store in stores))
            done.set()
    missed = [e for r in recorders for e in r.of(EventType.JOB_MISSED)]
    assert [e.data["reason"] for e in missed] == ["coalesced"]
    assert missed[0].data["count"] == 20
    assert sum(s.job_statistics().missed.get("coalesced", 0) for s in schedulers) == 20
    assert sum(len(r.of(EventType.JOB_COMPLETED)) for r in recorders) == 1


def terminate(postgres_url: str, application_name: str) -> int:
    """End every server connection of one store (as a server restart would, for it only:
    other tests' connections stay); how many there were."""
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            [application_name],
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_connections_cut_mid_run_reconnect_without_a_duplicate_or_a_silent_gap(
    postgres_url: str, state_url: str, schema: str, messages: list[tuple[str, str]]
) -> None:
    store = PostgresJobStore(state_url, poll_interval=0.1)
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=store)
    scheduler.add_job(noop, "interval", seconds=0.05, id="tick")
    seen = Recorder(scheduler)
    name = f"eventsched {store.process}"[:63]
    with anyio.fail_after(60):
        async with scheduler:
            await seen.wait_count(EventType.JOB_COMPLETED, 5, limit=20)
            cut = await anyio.to_thread.run_sync(terminate, postgres_url, name)
            before = len(seen.of(EventType.JOB_COMPLETED))
            await seen.wait_count(EventType.JOB_COMPLETED, before + 10, limit=30)
            # Registered and locked again: nobody would take its runs for a dead one's.
            await until(lambda: store._session is not None and not store._session.closed)
            with psycopg.connect(postgres_url) as connection:
                row = connection.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                    " WHERE l.locktype = 'advisory' AND a.application_name = %s",
                    [name],
                ).fetchone()
            assert row == (1,)
            scheduler.stop()
    assert cut >= 2  # the pool's connection, the session, the listener
    started = [e.data["fire_time"] for e in seen.of(EventType.JOB_STARTED)]
    assert len(started) == len(set(started))
    rows = fires(state_url, schema)
    assert {outcome for _, _, outcome in rows} == {"ended"}
    missed = {
        datetime.fromisoformat(at)
        for e in seen.of(EventType.JOB_MISSED)
        for at in e.data["fire_times"]
    }
    assert all(e.data["reason"] != "interrupted" for e in seen.of(EventType.JOB_MISSED))
    times = sorted(at for _, at, _ in rows)
    step = timedelta(seconds=0.05)
    grid = {times[0] + n * step for n in range(round((times[-1] - times[0]) / step) + 1)}
    assert grid <= set(times) | missed
    assert any(level == "WARNING" for level, m in messages if "postgres" in m.lower())


async def test_jobs_listing_never_writes_nor_locks(
    state_url: str, schema: str, postgres_url: str
) -> None:
    """Read while a scheduler runs: the rows it reads are the scheduler's, and the
    listing leaves no trace (no process row, no lock, and a write would be refused)."""
    from eventsched.cli._jobsdb import read_state_url

    scheduler = shared(state_url)
    scheduler.add_job(noop, "interval", seconds=0.05, id="tick")
    seen = Recorder(scheduler)
    with anyio.fail_after(30):
        async with scheduler:
            await seen.wait_count(EventType.JOB_COMPLETED, 2, limit=20)
            listed = await anyio.to_thread.run_sync(read_state_url, state_url)
            scheduler.stop()
    assert list(listed) == ["tick"]
    assert listed["tick"].saved.paused is False
    assert listed["tick"].last_outcome in {"ended", "running"}
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute(f"SELECT count(*) FROM {schema}.processes").fetchone()
    assert row == (0,)  # the scheduler unregistered; the listing never registered
    conninfo = state_url.split("?")[0]
    with (
        psycopg.connect(conninfo, options="-c default_transaction_read_only=on") as connection,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        connection.execute(f"DELETE FROM {schema}.jobs")


async def test_claims_ahead_in_one_process_make_no_miss_nor_duplicate_in_another(
    state_url: str,
) -> None:
    """Two processes (schedulers) claiming 0.1 s ahead on one schema, jobs every 50 ms:
    each fire time runs once, with no gap, and neither process reports any fire time
    missed because the other claimed it first (no grace to exceed: only a lost claim
    could be reported)."""
    assert PostgresJobStore.claim_lead > 0.05  # several fire times claimed per pass
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    schedulers = [shared(state_url) for _ in range(2)]
    recorders = []
    for scheduler in schedulers:
        for n in range(5):
            scheduler.add_job(
                noop,
                "interval",
                seconds=0.05,
                start_date=start,
                id=f"j{n}",
                coalesce=False,
                misfire_grace_time=None,
                max_instances=100,
            )
        recorders.append(Recorder(scheduler))
    with anyio.fail_after(60):
        async with schedulers[0], schedulers[1]:
            await until(
                lambda: sum(len(r.of(EventType.JOB_COMPLETED)) for r in recorders) >= 150, 30
            )
            for scheduler in schedulers:
                scheduler.stop()
    runs: dict[str, list[datetime]] = {}
    for recorder in recorders:
        for event in recorder.of(EventType.JOB_STARTED):
            runs.setdefault(event.data["job_id"], []).append(
                datetime.fromisoformat(event.data["fire_time"])
            )
    # Claims ahead that a stop could not hand back (the other process had moved the
    # row on) are reported "shutdown" at the stop: the only misses allowed.
    missed = [e.data for r in recorders for e in r.of(EventType.JOB_MISSED)]
    assert [m for m in missed if m["reason"] != "shutdown"] == []
    for job_id, times in runs.items():
        assert len(times) == len(set(times)), f"{job_id} ran a fire time twice"
        times.sort()
        steps = {later - earlier for earlier, later in itertools.pairwise(times)}
        assert steps <= {timedelta(seconds=0.05)}, f"{job_id} has a gap: {sorted(steps)}"
