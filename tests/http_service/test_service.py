"""The HTTP service in the scheduler's task group: metrics, probes, JSON, tokens, stopping."""

from __future__ import annotations

import socket

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventsched import Event, EventScheduler, EventType
from eventsched.http import HttpService

from ._client import request

pytestmark = pytest.mark.anyio


def _with_http(token: str | None = None, **kwargs: object) -> tuple[EventScheduler, HttpService]:
    scheduler = EventScheduler(**kwargs)  # type: ignore[arg-type]
    service = HttpService(scheduler, "127.0.0.1:0", token=token)
    scheduler.add_service(service)
    return scheduler, service


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_equal_statistics() -> None:
    """A scrape of /metrics, parsed by prometheus_client, gives the figures statistics() gives."""
    scheduler, service = _with_http(queue_size=4)
    handled = anyio.Event()
    seen = 0

    @scheduler.on("work")
    async def work(event: Event) -> None:
        nonlocal seen
        seen += 1
        if seen == 3:
            handled.set()
        if event.data["i"] == 2:
            raise ValueError("the third one fails")

    drained = anyio.Event()
    bursts = 0

    @scheduler.on("burst")
    async def burst(event: Event) -> None:
        nonlocal bursts
        bursts += 1
        if bursts == 4:  # the queue's size: what got in of the burst
            drained.set()

    async def job() -> None:
        pass

    scheduler.add_job(job, "interval", seconds=3600, id="hourly")
    with anyio.fail_after(10):
        async with scheduler:
            for i in range(3):  # fewer than the queue holds
                await scheduler.emit("work", {"i": i})
            await handled.wait()
            for i in range(8):  # more than the queue holds, with no checkpoint between
                scheduler.emit_nowait("burst", {"i": i})
            # Let the burst drain so that the figures stand still while compared.
            await drained.wait()
            reply = await request(service.port, "/metrics")
            stats = scheduler.statistics()
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples = _samples(reply.text)
    assert samples[("eventsched_events_total", (("outcome", "handled"),))] == stats.handled
    assert samples[("eventsched_events_total", (("outcome", "failed"),))] == stats.failed == 1
    assert samples[("eventsched_events_accepted_total", ())] == stats.accepted
    assert samples[("eventsched_events_emitted_total", ())] == stats.emitted
    drops = samples[("eventsched_events_dropped_total", (("reason", "queue_full"),))]
    assert drops == stats.dropped["queue_full"] > 0
    assert samples[("eventsched_events_dropped_total", (("reason", "evicted"),))] == 0
    assert samples[("eventsched_events_rejected_total", (("reason", "invalid"),))] == 0
    assert samples[("eventsched_queue_capacity", ())] == 4
    assert samples[("eventsched_queue_depth", ())] == stats.still_queued
    assert samples[("eventsched_handler_errors_total", ())] == 1
    assert samples[("eventsched_jobs", ())] == 1
    assert samples[("eventsched_job_runs_total", (("job", "hourly"), ("outcome", "started")))] == 0
    assert samples[("eventsched_scheduler_state", (("state", "running"),))] == 1
    latency = samples[("eventsched_event_latency_seconds", (("quantile", "0.5"),))]
    assert latency == stats.latency_p50


async def test_health_answers_while_a_handler_is_slow_and_readiness_follows_shutdown() -> None:
    """/healthz answers while a handler is busy; /readyz is 200 running, 503 once stopping."""
    scheduler, service = _with_http(workers=2)
    started = anyio.Event()
    release = anyio.Event()
    stopping = anyio.Event()

    @scheduler.on(EventType.SHUTDOWN_REQUESTED)
    async def on_stop(event: Event) -> None:
        stopping.set()

    @scheduler.on("slow")
    async def slow(event: Event) -> None:
        started.set()
        await release.wait()

    with anyio.fail_after(10):
        async with scheduler:
            await scheduler.emit("slow")
            await started.wait()
            assert (await request(service.port, "/healthz")).status == 200
            assert (await request(service.port, "/readyz")).status == 200
            scheduler.stop(reason="test")
            await stopping.wait()
            # The queue is draining (the slow handler holds an event): still serving.
            reply = await request(service.port, "/readyz")
            assert (reply.status, reply.text) == (503, "not ready: stopping\n")
            assert (await request(service.port, "/healthz")).status == 200
            release.set()


async def test_server_stops_with_the_scheduler() -> None:
    """Once the scheduler has stopped, nothing listens on the port any more."""
    scheduler, service = _with_http()
    with anyio.fail_after(10):
        async with scheduler:
            port = service.port
            assert (await request(port, "/healthz")).status == 200
        with pytest.raises(OSError, match="connection attempts failed"):
            await anyio.connect_tcp("127.0.0.1", port)


async def test_api_stats_and_jobs_as_json() -> None:
    """/api/stats holds statistics() and job_statistics(); /api/jobs one record per job."""
    scheduler, service = _with_http()

    async def job() -> None:
        pass

    scheduler.add_job(job, "interval", seconds=60, id="<b>every minute</b>")
    with anyio.fail_after(10):
        async with scheduler:
            await scheduler.emit("ping")
            stats = (await request(service.port, "/api/stats")).json()
            jobs = (await request(service.port, "/api/jobs")).json()
            expected = scheduler.statistics().as_dict()
    assert stats["state"] == "running"
    assert stats["events"]["queue_capacity"] == expected["queue_capacity"]
    assert stats["jobs"]["jobs"] == 1
    assert [job["id"] for job in jobs] == ["<b>every minute</b>"]
    assert jobs[0]["next_fire_time"] is not None
    assert jobs[0]["paused"] is False


async def test_changes_need_a_configured_token_given_as_bearer() -> None:
    """Pause/resume: 403 with no token configured; 401 with a wrong one; 200 with the right one."""

    async def job() -> None:
        pass

    plain, plain_service = _with_http()
    plain.add_job(job, "interval", seconds=60, id="j")
    with anyio.fail_after(10):
        async with plain:
            reply = await request(plain_service.port, "/api/jobs/j/pause", method="POST")
            assert reply.status == 403
            assert plain.get_job("j").paused is False

    guarded, service = _with_http(token="s3cret")
    guarded.add_job(job, "interval", seconds=60, id="j")
    with anyio.fail_after(10):
        async with guarded:
            port = service.port
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                reply = await request(port, "/api/jobs/j/pause", method="POST", headers=headers)
                assert reply.status == 401, headers
                assert "s3cret" not in reply.text
            good = {"Authorization": "Bearer s3cret"}
            reply = await request(port, "/api/jobs/j/pause", method="POST", headers=good)
            assert reply.status == 200
            assert reply.json()["paused"] is True
            assert guarded.get_job("j").paused is True
            reply = await request(port, "/api/jobs/j/resume", method="POST", headers=good)
            assert reply.json()["paused"] is False
            reply = await request(port, "/api/jobs/nope/pause", method="POST", headers=good)
            assert reply.status == 404
            reply = await request(port, "/api/jobs/j/delete", method="POST", headers=good)
            assert reply.status == 404
            assert (await request(port, "/api/jobs/j/pause")).status == 405  # GET changes nothing


async def test_page_is_served_with_a_strict_policy() -> None:
    """/ serves the live page, which may load nothing from elsewhere."""
    scheduler, service = _with_http()
    with anyio.fail_after(10):
        async with scheduler:
            reply = await request(service.port, "/")
    assert reply.status == 200
    assert "default-src 'none'" in reply.headers["content-security-policy"]
    assert 'id="queue"' in reply.text
    assert "api/stats" in reply.text


def test_a_port_in_use_is_refused_before_anything_starts() -> None:
    """Binding happens in the constructor: a port in use is an HttpAddressError at once."""
    from eventsched.http import HttpAddressError

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        with pytest.raises(
            HttpAddressError, match=f"HTTP_ADDRESS='127.0.0.1:{port}': cannot listen: "
        ):
            HttpService(EventScheduler(), f"127.0.0.1:{port}")
    finally:
        holder.close()


async def test_run_now_is_guarded_like_pause_and_refused_when_busy() -> None:
    """POST /api/jobs/{id}/run: 403 without a token, 401 with a wrong one; 200 starts a
    manual run; 409 while max_instances runs are in progress; 404 for an unknown job."""
    release = anyio.Event()
    started = anyio.Event()
    finished = anyio.Event()

    async def job() -> None:
        started.set()
        await release.wait()
        finished.set()

    plain, plain_service = _with_http()
    plain.add_job(job, "interval", hours=1, id="j")
    with anyio.fail_after(10):
        async with plain:
            reply = await request(plain_service.port, "/api/jobs/j/run", method="POST")
            assert reply.status == 403
    assert plain.job_statistics().runs_started == 0

    guarded, service = _with_http(token="s3cret")
    guarded.add_job(job, "interval", hours=1, id="j")
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    guarded.on(EventType.JOB_STARTED, record)
    with anyio.fail_after(10):
        async with guarded:
            port = service.port
            wrong = {"Authorization": "Bearer wrong"}
            reply = await request(port, "/api/jobs/j/run", method="POST", headers=wrong)
            assert reply.status == 401
            good = {"Authorization": "Bearer s3cret"}
            reply = await request(port, "/api/jobs/j/run", method="POST", headers=good)
            assert reply.status == 200
            assert reply.json()["id"] == "j"
            await started.wait()
            reply = await request(port, "/api/jobs/j/run", method="POST", headers=good)
            assert reply.status == 409
            assert "max_instances" in reply.json()["error"]
            reply = await request(port, "/api/jobs/nope/run", method="POST", headers=good)
            assert reply.status == 404
            release.set()
            await finished.wait()
            samples = _samples((await request(port, "/metrics")).text)
    assert samples[("eventsched_job_runs_started_total", (("kind", "manual"),))] == 1
    assert samples[("eventsched_job_runs_started_total", (("kind", "scheduled"),))] == 0
    assert [event.data["manual"] for event in seen] == [True]
    stats = guarded.job_statistics()
    assert (stats.runs_manual, stats.runs_completed) == (1, 1)
