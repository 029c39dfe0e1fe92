"""PostgresJobStore against a real PostgreSQL: compare-and-set saves, claims, takeovers."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import anyio
import psycopg
import pytest

import eventsched
from eventsched import EventScheduler, EventType, JobStore, PostgresJobStore, SavedJob

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(seconds=1)
T2 = T0 + timedelta(seconds=2)


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[PostgresJobStore]:
    store = PostgresJobStore(url)
    with anyio.fail_after(30):
        await store.lock()
    try:
        yield store
    finally:
        with anyio.fail_after(30):
            await store.close()


def fires(url: str, schema: str) -> list[tuple[str, datetime, str | None]]:
    conninfo = url.split("?")[0]
    with psycopg.connect(conninfo) as connection:
        rows = connection.execute(
            f"SELECT job_id, fire_time, outcome FROM {schema}.fires ORDER BY 1, 2"
        ).fetchall()
    return [(str(j), t, o) for j, t, o in rows]


def version(url: str, schema: str, job_id: str) -> int:
    with psycopg.connect(url.split("?")[0]) as connection:
        row = connection.execute(
            f"SELECT version FROM {schema}.jobs WHERE id = %s", [job_id]
        ).fetchone()
    assert row is not None
    return int(row[0])


def age_heartbeat(url: str, schema: str, process: str) -> None:
    """As if ``process`` had not beaten for an hour (its lease long over)."""
    with psycopg.connect(url.split("?")[0]) as connection:
        connection.execute(
            f"UPDATE {schema}.processes SET heartbeat_at = now() - interval '1 hour' WHERE id = %s",
            [process],
        )


def test_it_is_public_and_a_job_store(state_url: str) -> None:
    assert eventsched.PostgresJobStore is PostgresJobStore
    assert isinstance(PostgresJobStore(state_url), JobStore)


def test_the_location_never_shows_the_password() -> None:
    store = PostgresJobStore("postgresql://me:s3cret@db.example:5432/app?schema=jobs")
    assert "s3cret" not in str(store.location)
    assert "jobs" in str(store.location)


async def test_saved_states_are_loaded_by_another_process(state_url: str) -> None:
    async with opened(state_url) as first:
        assert await first.load() == {}
        assert await first.save({"a": SavedJob("f", T0, T1)}) == frozenset()
    async with opened(state_url) as second:
        assert await second.load() == {"a": SavedJob("f", T0, T1, paused=False)}


async def test_an_insert_that_loses_the_race_is_refused_and_the_winner_kept(
    state_url: str,
) -> None:
    async with opened(state_url) as one, opened(state_url) as two:
        await one.load()
        await two.load()
        assert await one.save({"a": SavedJob("f", None, T1)}) == frozenset()
        assert await two.save({"a": SavedJob("f", None, T2)}) == {"a"}
        assert two.current("a") == SavedJob("f", None, T1, paused=False)
        # Refused once, not for ever: the next change is compared with the winner's row.
        assert await two.save({"a": SavedJob("f", T1, T2, (T1,))}) == frozenset()


async def test_one_fire_time_is_claimed_once_whoever_asks(state_url: str, schema: str) -> None:
    async with opened(state_url) as one, opened(state_url) as two:
        await one.save({"a": SavedJob("f", None, T1)})
        await two.load()
        claim = SavedJob("f", T1, T2, (T1,))
        results = [await one.save({"a": claim}), await two.save({"a": claim})]
    assert sorted(map(sorted, results)) == [[], ["a"]]
    assert fires(state_url, schema) == [("a", T1, None)]


async def test_concurrent_claims_of_many_jobs_never_double(state_url: str, schema: str) -> None:
    """Two stores claim the same fire times of 20 jobs at once: each is won exactly once."""
    jobs = [f"job{n:02}" for n in range(20)]
    async with opened(state_url) as one, opened(state_url) as two:
        await one.save({j: SavedJob("f", None, T1) for j in jobs})
        await two.load()
        won: dict[str, set[str]] = {}

        async def claim(store: PostgresJobStore, name: str) -> None:
            order = jobs if name == "one" else list(reversed(jobs))
            refused = await store.save({j: SavedJob("f", T1, T2, (T1,)) for j in order})
            won[name] = set(jobs) - refused

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                group.start_soon(claim, one, "one")
                group.start_soon(claim, two, "two")
    assert won["one"] | won["two"] == set(jobs)
    assert won["one"] & won["two"] == set()
    assert Counter(j for j, _, _ in fires(state_url, schema)) == dict.fromkeys(jobs, 1)


async def test_ending_a_run_leaves_the_row_alone(state_url: str, schema: str) -> None:
    """A run ending in one process never makes another process's claim fail."""
    async with opened(state_url) as one:
        await one.save({"a": SavedJob("f", None, T1)})
        await one.save({"a": SavedJob("f", T1, T2, (T1,))})
        before = version(state_url, schema, "a")
        assert await one.save({"a": SavedJob("f", T1, T2)}) == frozenset()
        assert version(state_url, schema, "a") == before
    assert fires(state_url, schema) == [("a", T1, "ended")]


async def test_a_dead_process_claims_are_taken_over_once(state_url: str, schema: str) -> None:
    """Unfinished fires of a process whose session ended are taken over by one poll only."""
    async with opened(state_url) as live:
        await live.save({"b": SavedJob("f", None, T1)})
        await live.save({"b": SavedJob("f", T1, T2, (T1,))})
        dead = PostgresJobStore(state_url)
        with anyio.fail_after(30):
            await dead.lock()
            await dead.load()
            await dead.save({"a": SavedJob("f", None, T1)})
            await dead.save({"a": SavedJob("f", T1, T2, (T1,))})
            # As kill -9 would: the session (and its lock) ends, nothing is cleaned up;
            # and its heartbeat is older than the lease.
            session = dead._session
            assert session is not None
            session.close()
            age_heartbeat(state_url, schema, dead.process)
        async with opened(state_url) as heir, opened(state_url) as other:
            loaded = await heir.load()
            taken = await heir.poll(["a", "b"])
            again = await other.poll(["a", "b"])
        with anyio.fail_after(30):
            await dead._database.close()
    assert loaded["a"].running == ()  # the polls take over, not the load
    assert taken.interrupted == {"a": (T1,)}  # "b"'s process is alive: not interrupted
    assert again.interrupted == {}
    assert ("a", T1, "interrupted") in fires(state_url, schema)


async def test_a_scheduler_runs_its_jobs_on_the_store(
    state_url: str, schema: str, anyio_backend: object
) -> None:
    """End to end on each backend: claims recorded, every run ended, the row advanced."""
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=PostgresJobStore(state_url))
    completed = anyio.Event()
    count = 0

    async def job() -> None:
        nonlocal count
        count += 1
        if count == 3:
            completed.set()

    scheduler.add_job(job, "interval", seconds=0.1, id="tick")
    with anyio.fail_after(60):
        async with scheduler:
            await completed.wait()
            scheduler.stop()
    rows = fires(state_url, schema)
    assert len(rows) >= 3
    assert all(outcome == "ended" for _, _, outcome in rows)


async def test_two_schedulers_share_jobs_without_a_double_run(
    state_url: str, schema: str, anyio_backend: object
) -> None:
    """Two schedulers on one schema, started together (their grids differ until one
    wins the insert): every fire time runs once, and the other takes up the winner's."""
    runs: Counter[tuple[str, str]] = Counter()
    skipped: dict[str, list[str]] = {f"j{n}": [] for n in range(5)}
    schedulers = []
    for _ in range(2):
        scheduler = EventScheduler()
        scheduler.configure_jobs(store=PostgresJobStore(state_url))
        for n in range(5):
            scheduler.add_job(anyio.lowlevel.checkpoint, "interval", seconds=0.05, id=f"j{n}")

        async def count(event: eventsched.Event) -> None:
            runs[event.data["job_id"], event.data["fire_time"]] += 1

        async def missed(event: eventsched.Event) -> None:
            for at in event.data["fire_times"]:
                skipped[event.data["job_id"]].append(at)

        scheduler.on(EventType.JOB_COMPLETED, count)
        scheduler.on(EventType.JOB_MISSED, missed)
        schedulers.append(scheduler)

    async def run(scheduler: EventScheduler) -> None:
        # Both start at once, so that both may find the schema empty.
        async with scheduler:
            await anyio.sleep(1.5)  # the length of the run, not a synchronisation
            scheduler.stop()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for scheduler in schedulers:
                group.start_soon(run, scheduler)
    assert runs
    assert max(runs.values()) == 1
    recorded = Counter((j, t) for j, t, _ in fires(state_url, schema))
    assert max(recorded.values()) == 1
    # One grid per job (the winner's), and each fire time on it ran or was reported.
    step = timedelta(seconds=0.05)
    for job_id, reported in skipped.items():
        times = sorted(t for j, t in recorded if j == job_id)
        assert all((b - a) / step == round((b - a) / step) for a, b in itertools.pairwise(times))
        missed = {datetime.fromisoformat(at) for at in reported}
        covered = set(times) | {at for at in missed if times[0] < at < times[-1]}
        assert len(covered) == round((times[-1] - times[0]) / step) + 1, job_id


async def test_a_poll_says_whether_another_process_is_registered(state_url: str) -> None:
    """Alone, a process need not save its run ends at once (no one else counts them
    against max_instances); it learns of another at its next poll."""
    async with opened(state_url) as one:
        assert not one.alone  # not known before a poll: the safe answer
        with anyio.fail_after(30):
            await one.load()
            await one.poll([])
            assert one.alone
            async with opened(state_url):
                await one.poll([])
                assert not one.alone
            await one.poll([])
            assert one.alone
