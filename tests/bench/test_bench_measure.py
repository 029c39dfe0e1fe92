"""How the bench measures: paired ratios, interleaved trials, the machine's pauses,
progress lines. Pure functions, no subprocess."""

from __future__ import annotations

import gc
import io
from collections.abc import Callable

import pytest

from eventsched._bench import _manyjobs
from eventsched._bench._report import paired_ratio
from eventsched._bench._runner import Progress
from eventsched._bench._workloads import STALL_THRESHOLD, _interleaved, stalls


def test_ratios_pair_each_repetition_with_its_own_baseline() -> None:
    """The ratio is the median of the repetitions' own ratios, not a ratio of medians.

    In the third repetition the machine slowed the baseline's run only: the paired
    ratio keeps reading 2, the ratio of the medians (390 / 200) would not.
    """
    assert paired_ratio([100.0, 400.0, 390.0], [50.0, 200.0, 400.0]) == pytest.approx(2.0)
    # Counts that differ cannot be paired: the ratio of the medians.
    assert paired_ratio([3.0], [1.0, 2.0]) == pytest.approx(2.0)
    assert paired_ratio([], [1.0]) is None


def test_trials_are_interleaved_row_by_row() -> None:
    """Rows take turns (A B A B ...), so a slow spell hits one trial of each row."""
    calls: list[str] = []

    def row(name: str) -> Callable[[], int]:
        def one() -> int:
            calls.append(name)
            return len(calls)

        return one

    results = _interleaved({"a": row("a"), "b": row("b")}, 3)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert results == {"a": [1, 3, 5], "b": [2, 4, 6]}


def test_stalls_are_the_pauses_of_a_busy_loop_past_the_threshold() -> None:
    """A clock read twice per microsecond except for two gaps: only those are stalls,
    and the probe stops once its time is up."""
    gaps = {5: STALL_THRESHOLD * 3, 9: STALL_THRESHOLD / 2, 12: STALL_THRESHOLD + 1e-6}
    now = 0.0
    reads = 0

    def clock() -> float:
        nonlocal now, reads
        now += gaps.get(reads, 0.5e-6)
        reads += 1
        return now

    found = stalls(0.001, clock)
    assert found == pytest.approx([STALL_THRESHOLD * 3, STALL_THRESHOLD + 1e-6])
    assert now == pytest.approx(0.001, abs=1e-6)


def test_progress_off_a_terminal_prints_each_step_once() -> None:
    """In a log, a step is one line; the child's own report of the same step (a detail)
    is not repeated there (it was printed twice, once by each process)."""
    stream = io.StringIO()
    progress = Progress(2, stream)
    progress.show("rep 1/1 asyncio: throughput")
    progress.detail("rep 1/1 asyncio: throughput")
    progress.done += 1
    progress.show("rep 1/1 trio: throughput")
    progress.detail("rep 1/1 trio: throughput")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("rep 1/1 asyncio: throughput")
    assert lines[1].startswith("[1/2 runs,")


@pytest.mark.anyio
async def test_jobs_window_counts_each_fire_time_once(
    monkeypatch: pytest.MonkeyPatch, anyio_backend: object
) -> None:
    """Four jobs every second over a 2 s window: eight fire times. Runs 1 ms after each
    fire time count as that fire time's, as does one a hair (float noise) before its
    fire time; a run of a fire time past the window's end does not count. When the
    scheduler says it started half a second into the window, the fire times before
    that are no longer the window's, also those already run."""
    now = [1000.0]
    monkeypatch.setattr(_manyjobs, "_wall", lambda: now[0])
    window = _manyjobs._Window(4, 1.0, 2.0)
    assert window.fires == 8
    for i in range(2):
        for k, start in enumerate(window.starts):
            now[0] = start + i + (0.001 if k else -1e-6)
            await window.job(k)
    now[0] = window.end + 0.001  # the first job's third fire time: outside
    await window.job(0)
    assert window.all_ran.is_set()
    assert sorted(round(late, 6) for late in window.lateness) == [-1e-6] * 2 + [0.001] * 6
    late = _manyjobs._Window(4, 1.0, 2.0)
    for k in (0, 3):  # run by a scheduler starting, before it said it had started
        now[0] = late.starts[k] + 0.001
        await late.job(k)
    now[0] = late.begin + 0.5
    late.scheduler_started()
    assert late.fires == 6
    assert [round(x, 6) for x in late.lateness] == [0.001]  # job 3's, after the start
    now[0] = late.starts[1] + 0.001  # before the start: not the window's
    await late.job(1)
    assert len(late.lateness) == 1


def test_jobs_gc_freeze_freezes_for_the_row_only() -> None:
    """--job-gc-freeze: the objects alive when a row starts are frozen for that row
    (whatever ends it) and unfrozen after, so that the next row starts as it would have."""
    before = gc.get_freeze_count()
    inside: list[int] = []

    def row() -> None:
        with _manyjobs._frozen(True):
            inside.append(gc.get_freeze_count())
            raise RuntimeError("the row failed")

    with pytest.raises(RuntimeError, match="the row failed"):
        row()
    assert inside[0] > before
    assert gc.get_freeze_count() == before
    with _manyjobs._frozen(False):
        assert gc.get_freeze_count() == before
