"""`eventsched_job_lateness_seconds` and `eventsched_job_duration_seconds` on /metrics."""

from __future__ import annotations

import math

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventsched import Event, EventScheduler, EventType, RunHistogram
from eventsched.http import HttpService

from ._client import request

pytestmark = pytest.mark.anyio


def _histogram(text: str, name: str) -> tuple[list[tuple[float, float]], float, float]:
    """The ``le`` buckets (cumulative), the sum and the count of histogram ``name``."""
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == name]
    assert family.type == "histogram"
    buckets = [
        (float(s.labels["le"]), s.value) for s in family.samples if s.name == f"{name}_bucket"
    ]
    (total,) = [s.value for s in family.samples if s.name == f"{name}_sum"]
    (count,) = [s.value for s in family.samples if s.name == f"{name}_count"]
    return buckets, total, count


def _as_scraped(histogram: RunHistogram) -> tuple[list[tuple[float, float]], float, float]:
    return histogram.cumulative(), histogram.sum, histogram.count


async def test_job_timings_are_histograms_on_metrics() -> None:
    """A scrape gives job_timings() as Prometheus histograms, every bucket present."""
    scheduler = EventScheduler()
    service = HttpService(scheduler, "127.0.0.1:0")
    scheduler.add_service(service)
    ended = anyio.Event()
    outcomes = 0

    @scheduler.on(EventType.JOB_COMPLETED)
    @scheduler.on(EventType.JOB_FAILED)
    async def on_outcome(event: Event) -> None:
        nonlocal outcomes
        outcomes += 1
        if outcomes == 2:
            ended.set()

    async def fine() -> None:
        await anyio.sleep(0.02)

    async def broken() -> None:
        raise ValueError("broken")

    with anyio.fail_after(30):
        async with scheduler:
            empty = await request(service.port, "/metrics")
            # Date jobs without a run date: each runs once, now; nothing runs after them.
            scheduler.add_job(fine, "date", id="fine")
            scheduler.add_job(broken, "date", id="broken")
            await ended.wait()
            reply = await request(service.port, "/metrics")
            timings = scheduler.job_timings()
    for name in ("eventsched_job_lateness_seconds", "eventsched_job_duration_seconds"):
        buckets, total, count = _histogram(empty.text, name)
        assert (total, count) == (0, 0)
        assert buckets[-1] == (math.inf, 0)
        assert all(n == 0 for _, n in buckets)
    lateness = _histogram(reply.text, "eventsched_job_lateness_seconds")
    duration = _histogram(reply.text, "eventsched_job_duration_seconds")
    assert lateness == _as_scraped(timings.lateness)
    assert duration == _as_scraped(timings.duration)
    assert lateness[2] == duration[2] == 2
    assert duration[1] >= 0.02
