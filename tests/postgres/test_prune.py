"""Pruning the fires table: old finished rows go in batches, what is still needed stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import psycopg
import pytest

from eventsched import EventScheduler, EventType, PostgresJobStore
from jobs.jobtools import Recorder

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def insert(url: str, schema: str, rows: list[tuple[str, datetime, str | None, float]]) -> None:
    """(job, fire time, outcome, seconds since it finished) rows, claimed by nobody."""
    with psycopg.connect(url.split("?")[0]) as connection:
        connection.cursor().executemany(
            f"INSERT INTO {schema}.fires (job_id, fire_time, claimed_by, outcome, finished_at)"
            " VALUES (%s, %s, 'gone', %s, now() - make_interval(secs => %s))",
            rows,
        )


def left(url: str, schema: str) -> list[tuple[str, datetime, str | None]]:
    with psycopg.connect(url.split("?")[0]) as connection:
        found = connection.execute(
            f"SELECT job_id, fire_time, outcome FROM {schema}.fires ORDER BY 1, 2"
        ).fetchall()
    return [(str(j), t, o) for j, t, o in found]


async def test_old_finished_fires_go_and_each_jobs_latest_and_the_unfinished_stay(
    state_url: str, schema: str
) -> None:
    store = PostgresJobStore(state_url, keep_fires=60)
    at = [T0 + timedelta(minutes=m) for m in range(5)]
    with anyio.fail_after(30):
        await store.lock()
        try:
            insert(
                state_url,
                schema,
                [
                    ("a", at[0], "ended", 3600),  # old: goes
                    ("a", at[1], "interrupted", 3600),  # old: goes
                    ("a", at[2], None, 3600),  # unfinished: stays
                    ("a", at[3], "ended", 10),  # recent: stays
                    ("a", at[4], "ended", 3600),  # a's latest: stays
                    ("b", at[0], "ended", 3600),  # b's only, so its latest: stays
                ],
            )
            assert await store.prune() == 2
            assert await store.prune() == 0
        finally:
            await store.close()
    assert left(state_url, schema) == [
        ("a", at[2], None),
        ("a", at[3], "ended"),
        ("a", at[4], "ended"),
        ("b", at[0], "ended"),
    ]


async def test_a_backlog_goes_in_batches_and_one_process_prunes_at_a_time(
    state_url: str, schema: str
) -> None:
    store = PostgresJobStore(state_url, keep_fires=60)
    rows = [("a", T0 + timedelta(seconds=s), "ended", 3600.0) for s in range(2500)]
    with anyio.fail_after(30):
        await store.lock()
        try:
            insert(state_url, schema, rows)
            with psycopg.connect(state_url.split("?")[0]) as other:
                # Another process's pruning transaction holds the lock: this one yields.
                other.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    [f"eventsched prune {schema}"],
                )
                assert await store.prune() == 0
            assert await store.prune() == 2499  # three transactions of at most 1,000
        finally:
            await store.close()
    assert left(state_url, schema) == [("a", T0 + timedelta(seconds=2499), "ended")]


async def test_a_running_scheduler_prunes_its_fires(state_url: str, schema: str) -> None:
    """keep_fires=0.5: the watcher's rounds (every 0.5 s) delete the first fires while
    the job goes on firing."""
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=PostgresJobStore(state_url, keep_fires=0.5))

    async def noop() -> None:
        await anyio.lowlevel.checkpoint()

    scheduler.add_job(noop, "interval", seconds=0.05, id="j")
    seen = Recorder(scheduler)
    with anyio.fail_after(30):
        async with scheduler:
            [first] = await seen.wait_count(EventType.JOB_COMPLETED, 1, limit=10)
            first_fire = datetime.fromisoformat(first.data["fire_time"])
            while left(state_url, schema)[0][1] <= first_fire:  # noqa: ASYNC110 (no event)
                await anyio.sleep(0.05)
            scheduler.stop()
    remaining = left(state_url, schema)
    assert remaining, "the job's latest fire time stays"
    assert all(o in {"ended", None} for _, _, o in remaining)
