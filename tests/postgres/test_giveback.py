"""The backlog scenarios of ``tests/jobs/test_jobs_giveback.py`` on PostgreSQL: a
backlog claimed in one pass and stopped by shutdown before its runs begin runs after
the restart or is reported, each fire time once; and the claims handed back leave the
``fires`` table (the row's primary key admits each fire time once: a claim left there
would refuse the run the schedule hands back)."""

from __future__ import annotations

from collections import Counter

import pytest

from eventsched import PostgresJobStore
from jobs.test_jobs_giveback import (
    BACKLOG,
    backlog_stopped_before_its_runs,
    backlog_stopped_midway,
)
from postgres.test_store import fires

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["stopping", "cancelled"])
async def test_a_backlog_stopped_before_its_runs_is_handed_back_whole(
    state_url: str, schema: str, mode: str
) -> None:
    await backlog_stopped_before_its_runs(lambda: PostgresJobStore(state_url), mode)
    rows = fires(state_url, schema)
    claimed = Counter(at for _, at, _ in rows)
    assert max(claimed.values()) == 1
    assert set(BACKLOG) <= set(claimed)
    assert all(outcome == "ended" for _, _, outcome in rows)


async def test_a_backlog_stopped_midway_runs_or_reports_each_fire_time_once(
    state_url: str, schema: str
) -> None:
    await backlog_stopped_midway(lambda: PostgresJobStore(state_url))
    claimed = Counter(at for _, at, _ in fires(state_url, schema))
    assert max(claimed.values()) == 1
