"""Tracing (eventsched.tracing): spans per handled event and per job run, read back from
the OpenTelemetry SDK's in-memory exporter, on asyncio and trio.

Time-based tests run on asyncio in real time and on trio in virtual time (``unit``);
job runs read a VirtualClock, so their fire times are exact on both.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Iterator

import anyio
import anyio.to_thread
import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from eventsched import Event, EventScheduler, EventType, SchedulerStateError
from eventsched._pipeline._routing import Handler, HandlerFunc, HandlerRegistry
from eventsched.testing import assert_accounted
from eventsched.tracing import (
    CAUSATION_ID,
    CORRELATION_ID,
    EVENT_ID,
    EVENT_TYPE,
    HANDLER,
    JOB_FIRE_TIME,
    JOB_ID,
    JOB_LATENESS,
    OUTCOME,
    instrument,
    is_instrumented,
)
from eventsched.tracing._emitters import Emitters
from jobs.jobtools import Recorder, new_scheduler, virtual_time

pytestmark = pytest.mark.anyio


class Spans:
    """A tracer provider whose finished spans are kept in memory, looked up by name."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.all() if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, [span.name for span in self.all()]
        return found[0]


@pytest.fixture
def spans() -> Iterator[Spans]:
    recorded = Spans()
    yield recorded
    recorded.provider.shutdown()


def attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def linked_to(span: ReadableSpan) -> list[int]:
    return [link.context.span_id for link in span.links]


async def test_one_consumer_span_per_handled_event_with_its_attributes(spans: Spans) -> None:
    """Each handled event has a root ``process <type>`` CONSUMER span naming the event,
    its lineage, the handler and the outcome; ``SHUTDOWN_REQUESTED``, handled by nobody,
    has none."""
    scheduler = EventScheduler()
    instrument(scheduler, tracer_provider=spans.provider)
    assert is_instrumented(scheduler)

    @scheduler.on("order_placed")
    async def take_order(event: Event) -> None:
        pass

    with anyio.fail_after(5):
        async with scheduler:
            await scheduler.emit("order_placed", {"n": 1}, correlation_id="c-1")
            await scheduler.emit(
                "order_placed", {"n": 2}, correlation_id="c-2", causation_id="cause-2"
            )
    first, second = spans.named("process order_placed")
    assert len(spans.all()) == 2
    assert first.kind is SpanKind.CONSUMER
    assert first.parent is None
    assert first.status.status_code is StatusCode.UNSET
    expected = {
        EVENT_TYPE: "order_placed",
        CORRELATION_ID: "c-1",
        HANDLER: take_order.__qualname__,
        OUTCOME: "handled",
    }
    assert {k: v for k, v in attributes(first).items() if k != EVENT_ID} == expected
    assert attributes(second)[CAUSATION_ID] == "cause-2"
    assert attributes(first)[EVENT_ID] != attributes(second)[EVENT_ID]
    assert_accounted(scheduler.statistics())


async def test_nothing_is_traced_without_instrument(spans: Spans) -> None:
    """A provider alone traces nothing, and an instrumented scheduler traces only itself."""
    traced, plain = EventScheduler(), EventScheduler()
    instrument(traced, tracer_provider=spans.provider)
    for scheduler in (traced, plain):
        scheduler.on("ping", _async_noop)
    with anyio.fail_after(5):
        async with plain, traced:
            await plain.emit("ping", {"from": "plain"})
            await traced.emit("ping", {"from": "traced"})
    assert len(spans.all()) == 1
    assert not is_instrumented(plain)
    assert "emit" not in vars(plain)  # its emit is the class's own method
    with pytest.raises(SchedulerStateError, match="is stopped: nothing left to trace"):
        instrument(plain, tracer_provider=spans.provider)


async def _async_noop(event: Event) -> None:
    pass


async def test_failures_set_error_status_and_record_the_exception(spans: Spans) -> None:
    """A handler that raises, async or sync (in its thread), gives an ERROR span with the
    conventions' exception event, and the scheduler still counts it failed."""
    scheduler = EventScheduler()
    instrument(scheduler, tracer_provider=spans.provider)

    @scheduler.on("bad_async")
    async def broken_async(event: Event) -> None:
        raise ValueError("async boom")

    @scheduler.on("bad_sync")
    def broken_sync(event: Event) -> None:
        raise KeyError("sync boom")

    with anyio.fail_after(5):
        async with scheduler:
            await scheduler.emit("bad_async")
            await scheduler.emit("bad_sync")
    for name, kind, message in [
        ("process bad_async", "ValueError", "async boom"),
        ("process bad_sync", "KeyError", "'sync boom'"),
    ]:
        span = spans.one(name)
        assert attributes(span)[OUTCOME] == "failed"
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == f"{kind}: {message}"
        (exception,) = span.events
        assert exception.name == "exception"
        event_attributes = dict(exception.attributes or {})
        assert event_attributes["exception.type"] == kind
        assert event_attributes["exception.message"] == message
        assert f"{kind}: {message}" in str(event_attributes["exception.stacktrace"])
    assert attributes(spans.one("process bad_sync"))[HANDLER] == broken_sync.__qualname__
    stats = scheduler.statistics()
    assert stats.failed == 2
    assert_accounted(stats)


@virtual_time
async def test_timeout_and_abort_are_errors_told_apart(spans: Spans, unit: float) -> None:
    """A handler cancelled at its timeout is ``timed_out``; one still running when the
    grace period ends is ``aborted``: both ERROR, as the scheduler counts them."""
    scheduler = EventScheduler(grace_period=unit)
    instrument(scheduler, tracer_provider=spans.provider)
    started = anyio.Event()

    @scheduler.on("slow", timeout=unit)
    async def slow(event: Event) -> None:
        await anyio.sleep(100 * unit)

    @scheduler.on("stuck")
    async def stuck(event: Event) -> None:
        started.set()
        await anyio.sleep(1000 * unit)

    with anyio.fail_after(50 * unit):
        async with scheduler:
            await scheduler.emit("slow")
            await scheduler.emit("stuck")
            await started.wait()
    timed_out, aborted = spans.one("process slow"), spans.one("process stuck")
    assert attributes(timed_out)[OUTCOME] == "timed_out"
    assert timed_out.status.status_code is StatusCode.ERROR
    assert attributes(aborted)[OUTCOME] == "aborted"
    assert aborted.status.status_code is StatusCode.ERROR
    stats = scheduler.statistics()
    assert (stats.timed_out, stats.aborted_in_flight) == (1, 1)


async def test_emitted_events_link_to_the_span_that_emitted_them(spans: Spans) -> None:
    """What a handler emits, async on the loop or sync in its thread (emit_nowait),
    links to that handler's span; with two handlers of one type, each emitted event
    links to its own emitter, not to its cause's other handler."""
    scheduler = EventScheduler()
    instrument(scheduler, tracer_provider=spans.provider)

    @scheduler.on("start")
    async def first(event: Event) -> None:
        await scheduler.emit("from_first")

    @scheduler.on("start")
    async def second(event: Event) -> None:
        await scheduler.emit("from_second")

    @scheduler.on("from_first")
    def in_thread(event: Event) -> None:
        scheduler.emit_nowait("from_thread")

    scheduler.on("from_second", _async_noop)
    last = anyio.Event()

    @scheduler.on("from_thread")
    async def end_of_chain(event: Event) -> None:
        last.set()

    with anyio.fail_after(5):
        async with scheduler:
            await scheduler.emit("start")
            await last.wait()
    # Leaving the block drained the queue: every span has ended.
    by_handler = {attributes(s)[HANDLER]: s for s in spans.named("process start")}
    emitted_by_first = spans.one("process from_first")
    assert linked_to(emitted_by_first) == [span_id(by_handler[first.__qualname__])]
    assert linked_to(spans.one("process from_second")) == [span_id(by_handler[second.__qualname__])]
    assert linked_to(spans.one("process from_thread")) == [span_id(emitted_by_first)]
    # Emitted outside any span (the test body): no link.
    assert [linked_to(s) for s in spans.named("process start")] == [[], []]


@virtual_time
async def test_job_run_spans_and_the_links_to_them(spans: Spans, unit: float) -> None:
    """A run is a ``job <id>`` span with its fire time, lateness, correlation id and
    outcome; its ``JOB_*`` events and what the job emits link to it."""
    scheduler = new_scheduler()
    instrument(scheduler, tracer_provider=spans.provider)

    async def report() -> None:
        await scheduler.emit("report_ready")

    @scheduler.on(EventType.JOB_STARTED)
    async def on_started(event: Event) -> None:
        await scheduler.emit("seen_start")

    scheduler.on("report_ready", _async_noop)
    recorder = Recorder(scheduler)  # a "*" handler: JOB_* events get spans too
    scheduler.add_job(report, "date", id="report")
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=30 * unit)
    (started,) = recorder.of(EventType.JOB_STARTED)
    job = spans.one("job report")
    assert job.parent is None
    assert job.status.status_code is StatusCode.UNSET
    assert attributes(job) == {
        JOB_ID: "report",
        JOB_FIRE_TIME: started.data["fire_time"],
        JOB_LATENESS: attributes(job)[JOB_LATENESS],
        CORRELATION_ID: started.correlation_id,
        OUTCOME: "completed",
    }
    assert 0.0 <= float(attributes(job)[JOB_LATENESS]) < 30 * unit  # type: ignore[arg-type]
    # report_ready has two handlers (the noop and the recorder's "*"), job_started two
    # (on_started and the recorder's): a span each, each linked to the run.
    for name, handlers in [
        ("process job_started", 2),
        ("process job_completed", 1),
        ("process report_ready", 2),
    ]:
        found = [linked_to(span) for span in spans.named(name)]
        assert found == [[span_id(job)]] * handlers, name
    # What a handler of JOB_STARTED emits names the same cause as what the job emits,
    # but links to that handler's span, not to the run.
    by_handler = {attributes(s)[HANDLER]: s for s in spans.named("process job_started")}
    seen_start = spans.one("process seen_start")
    assert linked_to(seen_start) == [span_id(by_handler[on_started.__qualname__])]
    assert attributes(seen_start)[CAUSATION_ID] == started.id


@virtual_time
async def test_runs_have_spans_when_nobody_listens_to_job_events(spans: Spans, unit: float) -> None:
    """No JOB_* handler: no JOB_* event is built, yet each run has its span, with the
    correlation id the events would have carried (what the job emits carries it too)."""
    scheduler = new_scheduler()
    instrument(scheduler, tracer_provider=spans.provider)
    emitted: list[Event] = []
    done = anyio.Event()

    async def job() -> None:
        await scheduler.emit("tick")

    async def on_tick(event: Event) -> None:
        emitted.append(event)
        if len(emitted) == 2:
            done.set()

    scheduler.on("tick", on_tick)
    scheduler.add_job(job, "interval", seconds=unit, id="quiet")
    async with scheduler:
        with anyio.fail_after(30 * unit):
            await done.wait()
        scheduler.remove_job("quiet")
        await scheduler.jobs.wait_idle()
        assert scheduler.statistics().emitted == len(emitted)  # only the job's own
    runs = {attributes(span)[CORRELATION_ID]: span for span in spans.named("job quiet")}
    assert len(runs) >= 2
    assert all(attributes(span)[OUTCOME] == "completed" for span in runs.values())
    processed = {attributes(span)[EVENT_ID]: span for span in spans.named("process tick")}
    for tick in emitted:
        run = runs[tick.correlation_id]  # the run's correlation id, on its span
        assert linked_to(processed[tick.id]) == [span_id(run)]


@virtual_time
async def test_failed_and_timed_out_runs_are_errors(spans: Spans, unit: float) -> None:
    """A run that raises is ``failed`` with its exception recorded; one past its
    timeout is ``timed_out``; both ERROR."""
    scheduler = new_scheduler()
    instrument(scheduler, tracer_provider=spans.provider)

    async def broken() -> None:
        raise RuntimeError("no data")

    async def hangs() -> None:
        await anyio.sleep(100 * unit)

    scheduler.add_job(broken, "date", id="broken")
    scheduler.add_job(hangs, "date", id="hangs", timeout=unit)
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_FAILED, 2, limit=30 * unit)
    failed, timed_out = spans.one("job broken"), spans.one("job hangs")
    assert attributes(failed)[OUTCOME] == "failed"
    assert failed.status.status_code is StatusCode.ERROR
    (exception,) = failed.events
    assert dict(exception.attributes or {}) == {
        "exception.type": "RuntimeError",
        "exception.message": "no data",
    }
    assert attributes(timed_out)[OUTCOME] == "timed_out"
    assert timed_out.status.status_code is StatusCode.ERROR
    assert timed_out.events == ()


@virtual_time
async def test_run_cancelled_by_shutdown_is_aborted(spans: Spans, unit: float) -> None:
    scheduler = new_scheduler(grace_period=unit)
    instrument(scheduler, tracer_provider=spans.provider)

    async def forever() -> None:
        await anyio.sleep_forever()

    scheduler.add_job(forever, "date", id="forever")
    recorder = Recorder(scheduler)
    with anyio.fail_after(50 * unit):
        async with scheduler:
            await recorder.wait_count(EventType.JOB_STARTED, 1, limit=30 * unit)
    span = spans.one("job forever")
    assert attributes(span)[OUTCOME] == "aborted"
    assert span.status.status_code is StatusCode.ERROR
    assert scheduler.job_statistics().runs_aborted == 1


async def test_handlers_added_later_are_traced_and_off_still_works(spans: Spans) -> None:
    """instrument() wraps the handlers present and those registered after it; off()
    takes the function given to on(), as without tracing."""
    scheduler = EventScheduler()
    scheduler.on("early", _async_noop)
    instrument(scheduler, tracer_provider=spans.provider)

    async def late(event: Event) -> None:
        pass

    scheduler.on("late", late)
    scheduler.on("gone", _async_noop)
    assert scheduler.off("gone", _async_noop)
    with anyio.fail_after(5):
        async with scheduler:
            for kind in ("early", "late", "gone"):
                await scheduler.emit(kind)
    assert sorted(span.name for span in spans.all()) == ["process early", "process late"]


def test_instrument_refuses_twice_and_a_bad_bound(spans: Spans) -> None:
    scheduler = EventScheduler()
    with pytest.raises(ValueError, match="remember=0 must be a positive int"):
        instrument(scheduler, tracer_provider=spans.provider, remember=0)
    instrument(scheduler, tracer_provider=spans.provider)
    with pytest.raises(SchedulerStateError, match="already instrumented"):
        instrument(scheduler, tracer_provider=spans.provider)


def test_emitters_are_bounded_oldest_forgotten_first(spans: Spans) -> None:
    """Past ``remember`` events, the oldest emitter is forgotten (no link), the newer
    ones kept; outside any span nothing is noted."""
    emitters = Emitters(2)
    tracer = spans.provider.get_tracer("test")
    events = [Event.create("e") for _ in range(3)]
    emitters.note(events[0])
    assert len(emitters) == 0
    with tracer.start_as_current_span("emitter") as emitter:
        for event in events:
            emitters.note(event)
    assert len(emitters) == 2
    assert emitters.links(events[0]) == ()
    assert [link.context for link in emitters.links(events[2])] == [emitter.get_span_context()]


def test_without_the_extra_the_import_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without opentelemetry-api, ``import eventsched.tracing`` names the extra."""
    for name in [n for n in sys.modules if n.startswith("eventsched.tracing")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    with pytest.raises(ImportError, match=r"pip install 'eventsched\[otel\]'"):
        importlib.import_module("eventsched.tracing")


class EndedSignal(SpanProcessor):
    """Sets a threading.Event when a span of the given name ends (in any thread)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ended = threading.Event()

    def on_end(self, span: ReadableSpan) -> None:
        if span.name == self.name:
            self.ended.set()


@pytest.mark.slow
async def test_sync_handler_past_its_timeout_is_timed_out(spans: Spans) -> None:
    """A sync handler the scheduler gave up on at its timeout: its span ends when the
    thread's call returns, ``timed_out`` and ERROR, as the scheduler counted it.
    (Real time: the call in the thread is what overruns.)"""
    signal = EndedSignal("process slow_sync")
    spans.provider.add_span_processor(signal)
    scheduler = EventScheduler()
    instrument(scheduler, tracer_provider=spans.provider)

    @scheduler.on("slow_sync", timeout=0.05)
    def slow_sync(event: Event) -> None:
        time.sleep(0.3)  # the overrun under test, not a wait for something

    with anyio.fail_after(10):
        async with scheduler:
            await scheduler.emit("slow_sync")
        # Abandoned by the scheduler, the call is still running: wait for its span.
        assert await anyio.to_thread.run_sync(signal.ended.wait, 5.0)
    span = spans.one("process slow_sync")
    assert attributes(span)[OUTCOME] == "timed_out"
    assert span.status.status_code is StatusCode.ERROR
    assert scheduler.statistics().timed_out == 1


def test_the_registry_finds_a_registration_by_its_decorated_function() -> None:
    """The pipeline's seam (HandlerRegistry.decorate): the routing table calls the
    decorated function, error reports find the registration from it, off() takes the
    original, and a registry is decorated once."""
    registry = HandlerRegistry()
    registry.add("a", _async_noop, None)
    calls: list[str] = []

    def decorate(handler: Handler) -> HandlerFunc:
        async def decorated(event: Event) -> None:
            calls.append(handler.name)

        return decorated

    registry.decorate(decorate)
    routed = registry.routes["a"]
    assert routed is not _async_noop
    found = registry.find("a", routed)  # type: ignore[arg-type]
    assert found is not None
    assert found.func is _async_noop
    assert registry.routes["a"] is routed  # a rebuild keeps the one decorated function
    registry.add("b", _async_noop, None)
    assert registry.routes["a"] is routed
    assert registry.remove("a", _async_noop)
    assert "a" not in registry.routes
    with pytest.raises(ValueError, match="already decorated"):
        registry.decorate(decorate)
