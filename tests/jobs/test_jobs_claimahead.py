"""Claims ahead: a durable store gets a pass's claims before their fire times, in one save.

A recording store (durable for the scheduler, see ``jobtools.RecordingStore``) sees each
save and can change the job right after its fire time was claimed, before that time
comes: the run then decides at its fire time (``_jobs/_giveback.at_fire_time``) whether
it may start. Virtual time on trio, real time on asyncio.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest
from jobtools import EPOCH, Recorder, RecordingStore, fire_times, is_virtual, virtual_time

from eventsched import EventScheduler, EventType, MissReason, SavedJob
from eventsched._jobs._claims import CLAIM_LEAD
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio

F1 = EPOCH + timedelta(seconds=1)
F2 = F1 + timedelta(seconds=1)
LIMIT = 30  # seconds (virtual on trio); each test takes a fraction of one in real time


def ticking(store: RecordingStore, clock: VirtualClock | None = None) -> EventScheduler:
    """A scheduler on ``store`` with one job, "tick", every second from F1."""
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=store, clock=clock or VirtualClock())
    scheduler.add_job(_noop, "interval", seconds=1, start_date=F1, id="tick")
    return scheduler


async def _noop() -> None:
    pass


def on_claim(store: RecordingStore, fire_time: datetime, action: Any) -> None:
    """Call ``action()`` once, right after the save that claims "tick" at ``fire_time``."""
    done: list[bool] = []

    def after_save(changes: dict[str, SavedJob | None]) -> None:
        state = changes.get("tick")
        if not done and state is not None and fire_time in state.running:
            done.append(True)
            action()

    store.after_save = after_save


@virtual_time
async def test_fire_times_within_the_lead_are_claimed_in_one_save_before_they_are_due(
    anyio_backend: Any,
) -> None:
    """Ten jobs due 2 ms apart: one save claims them all, a lead before the first."""
    store = RecordingStore()
    clock = VirtualClock()
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=store, clock=clock)
    first = EPOCH + timedelta(seconds=1)
    due = [first + timedelta(milliseconds=2 * n) for n in range(10)]
    for n, at in enumerate(due):
        scheduler.add_job(_noop, "date", run_date=at, id=f"job{n}")
    saved_at: list[datetime] = []
    store.after_save = lambda changes: saved_at.append(clock.now())
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 10, limit=LIMIT)
    claims = store.claims()
    assert len(claims) == 1  # without the lead: a save per 4 ms of fire times
    assert sorted(claims[0]) == [f"job{n}" for n in range(10)]
    if is_virtual(anyio_backend):
        claimed_at = saved_at[store.saves.index(claims[0])]
        assert first - claimed_at >= timedelta(seconds=CLAIM_LEAD)


@virtual_time
async def test_a_job_paused_after_its_claim_does_not_run_and_the_fire_time_goes_back() -> None:
    """Paused between claim and fire time: no run, no report; the saved schedule goes
    back to the fire time, and resuming later skips it as any fire time while paused."""
    store = RecordingStore()
    scheduler = ticking(store)
    paused = anyio.Event()

    def pause() -> None:
        scheduler.pause_job("tick")
        paused.set()

    on_claim(store, F1, pause)
    recorder = Recorder(scheduler)
    async with scheduler:
        with anyio.fail_after(LIMIT):
            await paused.wait()
            # The pass handed the claimed run to a lane before it let this task run
            # (no checkpoint between the save and the start): idle means it has reached
            # its fire time and ended.
            await scheduler.jobs.wait_idle()
            await scheduler.jobs.flush_state()
        given_back = store.state("tick")  # (a memory store does not keep pausing)
        assert (given_back.next_fire_time, given_back.running) == (F1, ())
        scheduler.resume_job("tick")
        started = await recorder.wait_count(EventType.JOB_STARTED, 1, limit=LIMIT)
    assert fire_times(started) == [F2]
    assert recorder.of(EventType.JOB_MISSED) == []


@virtual_time
async def test_a_job_paused_and_resumed_before_its_claimed_fire_time_runs_it_once() -> None:
    """Resuming computes the schedule from after the claimed fire time, not from now
    (which would claim that fire time a second time)."""
    store = RecordingStore()
    scheduler = ticking(store)

    def pause_and_resume() -> None:
        scheduler.pause_job("tick")
        scheduler.resume_job("tick")

    on_claim(store, F1, pause_and_resume)
    recorder = Recorder(scheduler)
    async with scheduler:
        started = await recorder.wait_count(EventType.JOB_STARTED, 2, limit=LIMIT)
    assert fire_times(started) == [F1, F2]
    assert recorder.of(EventType.JOB_MISSED) == []


@virtual_time
async def test_a_job_removed_after_its_claim_does_not_run_and_is_reported_withdrawn() -> None:
    store = RecordingStore()
    scheduler = ticking(store)
    on_claim(store, F1, lambda: scheduler.remove_job("tick"))
    recorder = Recorder(scheduler)
    async with scheduler:
        (missed,) = await recorder.wait_count(EventType.JOB_MISSED, 1, limit=LIMIT)
        await scheduler.jobs.flush_state()
        assert "tick" not in store._states
    assert missed.data["reason"] == MissReason.WITHDRAWN
    assert list(missed.data["fire_times"]) == [F1.isoformat()]
    assert recorder.of(EventType.JOB_STARTED) == []
    assert scheduler.job_statistics().missed["withdrawn"] == 1


@virtual_time
async def test_a_job_replaced_after_its_claim_reports_the_old_claim_and_runs_the_new() -> None:
    """The claimed fire time was the old definition's: reported withdrawn, never run by
    either; the new definition (same trigger) goes on from the next fire time."""
    store = RecordingStore()
    scheduler = ticking(store)
    ran: list[str] = []

    async def new() -> None:
        ran.append("new")

    def replace() -> None:
        scheduler.add_job(
            new, "interval", seconds=1, start_date=F1, id="tick", replace_existing=True
        )

    on_claim(store, F1, replace)
    recorder = Recorder(scheduler)
    async with scheduler:
        started = await recorder.wait_count(EventType.JOB_STARTED, 1, limit=LIMIT)
        (missed,) = await recorder.wait_count(EventType.JOB_MISSED, 1, limit=LIMIT)
    assert fire_times(started) == [F2]
    assert ran == ["new"]
    assert missed.data["reason"] == MissReason.WITHDRAWN
    assert list(missed.data["fire_times"]) == [F1.isoformat()]


@virtual_time
async def test_shutdown_with_a_claimed_run_waiting_gives_it_back_for_the_next_start() -> None:
    store = RecordingStore()
    scheduler = ticking(store)
    claimed = anyio.Event()
    on_claim(store, F1, claimed.set)
    recorder = Recorder(scheduler)
    async with scheduler:
        with anyio.fail_after(LIMIT):
            await claimed.wait()
    assert recorder.of(EventType.JOB_STARTED) == []
    assert recorder.of(EventType.JOB_MISSED) == []
    given_back = store.state("tick")
    assert (given_back.next_fire_time, given_back.running) == (F1, ())
    # The next start (a second later) runs it, late: coalesce=True keeps one run.
    again = ticking(store, VirtualClock(F1 + timedelta(milliseconds=500)))
    recorder = Recorder(again)
    async with again:
        started = await recorder.wait_count(EventType.JOB_STARTED, 1, limit=LIMIT)
    assert fire_times(started)[0] == F1


@virtual_time
async def test_max_instances_is_checked_when_a_claimed_fire_time_comes(
    anyio_backend: Any,
) -> None:
    """A job every 5 ms whose runs take 7 ms, claimed several fire times ahead: a run
    never overlaps another, and each fire time that came while one ran is reported."""
    store = RecordingStore()
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=store, clock=VirtualClock())
    spans: list[tuple[float, float]] = []

    async def slow() -> None:
        began = anyio.current_time()
        await anyio.sleep(0.007)
        spans.append((began, anyio.current_time()))

    scheduler.add_job(slow, "interval", seconds=0.005, start_date=F1, id="tick")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 6, limit=LIMIT)
    spans.sort()
    assert all(end <= later for (_, end), (later, _) in itertools.pairwise(spans))
    missed = recorder.of(EventType.JOB_MISSED)
    assert {event.data["reason"] for event in missed} <= {"max_instances", "coalesced"}
    ran = set(fire_times(recorder.of(EventType.JOB_STARTED)))
    reported = {datetime.fromisoformat(at) for e in missed for at in e.data["fire_times"]}
    assert not ran & reported
    if is_virtual(anyio_backend):
        assert {event.data["reason"] for event in missed} == {"max_instances"}
        # Every other fire time: each run (7 ms) outlasts the next fire time (5 ms on).
        last = max(ran)
        every = {F1 + timedelta(milliseconds=5 * n) for n in range(100)}
        assert {at for at in every if at <= last} == ran | {at for at in reported if at <= last}


@virtual_time
async def test_the_default_memory_store_claims_nothing_ahead() -> None:
    """Not durable (saved at close only): no lead, so a pass still covers only the next
    RUN_LEAD + BATCH (4 ms) and these ten fire times take several passes."""
    scheduler = EventScheduler()
    scheduler.configure_jobs(clock=VirtualClock())
    first = EPOCH + timedelta(seconds=1)
    for n in range(10):
        scheduler.add_job(
            _noop, "date", run_date=first + timedelta(milliseconds=2 * n), id=f"job{n}"
        )
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 10, limit=LIMIT)
        passes = scheduler.jobs.passes
    assert passes >= 4  # with a lead, one pass would have claimed all ten


class GatedStore(RecordingStore):
    """Holds every save that claims a fire time until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.saving = anyio.Event()
        self.gate = anyio.Event()

    async def save(self, changes: Any) -> frozenset[str]:
        if any(state is not None and state.running for state in changes.values()):
            self.saving.set()
            await self.gate.wait()
        return await super().save(changes)


@virtual_time
async def test_shutdown_waits_for_a_pass_saving_its_claims(anyio_backend: Any) -> None:
    """wait_idle returns only after the pass in progress is over: what that pass reports
    after its save is then emitted before the shutdown closes event intake (it was a
    log line only, with the JOB_MISSED event lost, when a process stopped mid-pass)."""
    store = GatedStore()
    scheduler = ticking(store)
    done = anyio.Event()

    async def wait_idle() -> None:
        await scheduler.jobs.wait_idle()
        done.set()

    with anyio.fail_after(LIMIT):
        async with scheduler, anyio.create_task_group() as group:
            await store.saving.wait()
            scheduler.jobs.begin_shutdown()
            group.start_soon(wait_idle)
            await anyio.wait_all_tasks_blocked()
            assert not done.is_set()  # the pass is still saving
            store.gate.set()
            await done.wait()
            scheduler.stop()
