"""``eventsched bench``: the quick run's JSON and table, and its one-line usage errors.

No figure is asserted on: the machine is shared and timings move. The structure is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventsched._bench._config import BACKENDS, METRICS, NO_RATIO_UNITS, WORKLOADS
from eventsched._bench._plot import chart_rows
from eventsched._bench._report import _cell, compare, format_report, paired_ratio, ratios
from eventsched._bench._workloads import STALL_THRESHOLD, _interleaved, stalls

pytestmark = pytest.mark.slow


def _bench(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventsched", "bench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One ``bench --quick --json`` run shared by the tests below: (document, stdout)."""
    where = tmp_path_factory.mktemp("bench")
    result = _bench(["--quick", "--json", "out.json"], where)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads((where / "out.json").read_text(encoding="utf-8"))
    return document, result.stdout


def test_quick_json_describes_the_machine(quick: tuple[dict[str, Any], str]) -> None:
    """The JSON names the Python, the package versions, the CPU count and the sizes used."""
    document, _ = quick
    assert document["schema"] == "eventsched-bench/2"
    machine = document["machine"]
    assert machine["python"].startswith("3.")
    assert machine["cpu_count"] >= 1
    for package in ("eventsched", "anyio", "trio"):
        assert machine["packages"][package]
    assert document["config"]["reps"] == 1
    assert document["config"]["workloads"] == list(WORKLOADS)


def test_quick_json_has_every_backend_and_workload(quick: tuple[dict[str, Any], str]) -> None:
    """Every backend is listed (uvloop with a note when missing) and every metric sampled."""
    document, _ = quick
    assert list(document["backends"]) == list(BACKENDS)
    available = [b for b, s in document["backends"].items() if s["available"]]
    assert {"asyncio", "trio"} <= set(available)
    for name, status in document["backends"].items():
        assert status["available"] or "not installed" in status["note"], name
    # One repetition, workload by workload, each on every backend in column order.
    assert document["order"] == [[b, w] for w in WORKLOADS for b in available]
    assert {m["workload"] for m in document["metrics"].values()} == set(WORKLOADS)
    for m in METRICS:
        samples = document["metrics"][m.id]["samples"]
        expected = [b for b in available if not (m.asyncio_only and b == "trio")]
        assert sorted(samples) == sorted(expected), m.id
        assert all(len(values) == 1 for values in samples.values()), m.id
        assert document["summary"][m.id]["asyncio"]["ratio"] in (1.0, None), m.id


def test_quick_run_accounts_for_every_event_at_shutdown(quick: tuple[dict[str, Any], str]) -> None:
    """The SIGTERM workload drains the full queue and loses nothing, on every backend."""
    document, _ = quick
    for values in document["metrics"]["shutdown.unaccounted"]["samples"].values():
        assert values == [0.0]
    for values in document["metrics"]["shutdown.handled"]["samples"].values():
        assert values == [1.0]


def test_quick_table_shows_every_workload_and_reference(quick: tuple[dict[str, Any], str]) -> None:
    """The terminal table has a section per workload and reads eventsched against references."""
    document, stdout = quick
    for workload in WORKLOADS:
        assert workload.upper() in stdout
    assert "x asyncio.Queue" in stdout
    assert "the ceiling" in stdout
    assert format_report(document) in stdout


def test_a_run_agrees_with_itself(quick: tuple[dict[str, Any], str]) -> None:
    """Comparing a run with itself finds every ratio within the tolerance."""
    document, _ = quick
    text, agree, total = compare(document, document)
    assert total > 0
    assert agree == total
    # The machine's pauses are shown beside the ratios, and are not one of them.
    assert "machine pauses" in text
    assert not [key for key in ratios(document) if "stall" in key]
    assert document["summary"]["latency.stall_share"]["trio"]["ratio"] is None


def test_unknown_backend_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A misspelt backend stops before any run, with one line naming the choices."""
    result = _bench(["--backends", "asyncio,curio"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "eventsched bench: bad --backends 'asyncio,curio': choose from asyncio, uvloop, trio"
    ]


def test_chart_leaves_out_the_rows_the_table_gives_no_ratio(
    quick: tuple[dict[str, Any], str],
) -> None:
    """The chart's bars are ratios: shares, counts and the machine's pauses are not
    drawn, every other row of the run is."""
    document, _ = quick
    drawn = {m.id for metrics in chart_rows(document).values() for m in metrics}
    expected = {m.id for m in METRICS if m.unit not in NO_RATIO_UNITS}
    assert drawn == expected
    assert "latency.stall_share" not in drawn
    assert "shutdown.handled" not in drawn


def test_plot_without_matplotlib_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """--plot without matplotlib says what to install, before the long run starts."""
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    result = _bench(["--plot", "chart.png"], tmp_path, PYTHONPATH=str(shadow.parent))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--plot needs matplotlib" in lines[0]
    assert "eventsched[plot]" in lines[0]


def test_bad_size_flag_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A bad value for a bench flag names the subcommand, the flag and the value."""
    result = _bench(["--reps", "0"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "eventsched: bad flag bench --reps = '0': input should be greater than 0"
    ]


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


def test_a_range_that_rounds_to_one_figure_is_not_shown() -> None:
    """Shares of 97.51% and 97.54% both print 97.5%: the cell shows no (97.5%-97.5%)."""
    alike = {"median": 0.9752, "min": 0.9751, "max": 0.9754, "n": 5, "ratio": None}
    assert _cell(alike, "fraction", show_ratio=False) == "97.5%"
    apart = {"median": 0.9752, "min": 0.95, "max": 0.9754, "n": 5, "ratio": None}
    assert _cell(apart, "fraction", show_ratio=False) == "97.5% (95.0%-97.5%)"


def test_cells_wider_than_their_column_stay_apart() -> None:
    """A cell with a long range and a ratio fills its whole column; a space still
    separates it from the cell before it."""
    wide = {"median": 0.109, "min": 0.0868, "max": 0.115, "n": 5, "ratio": 0.15}
    first = {"median": 0.732, "min": 0.692, "max": 0.755, "n": 5, "ratio": 1.0}
    document: dict[str, Any] = {
        "started": "2026-12-02T08:22:18+00:00",
        "baseline": "asyncio",
        "backends": {name: {"available": True, "note": ""} for name in ("asyncio", "uvloop")},
        "config": {"reps": 5, "trials": 5},
        "machine": {"python": "3.11.7", "cpu_count": 2, "packages": {}, "load_average": None},
        "metrics": {"timers.jobs_p50": {}},
        "summary": {"timers.jobs_p50": {"asyncio": first, "uvloop": wide}},
    }
    row = next(line for line in format_report(document).splitlines() if "job p50" in line)
    assert row.endswith("0.732 (0.692-0.755) 0.109 (0.0868-0.115) x0.15")


def test_latency_and_timers_run_in_several_processes_per_repetition(tmp_path: Path) -> None:
    """--latency-processes 2 --timer-processes 3: each backend's latency process runs
    twice and its timers process three times in the repetition, interleaved (asyncio,
    trio, asyncio, trio, ...), and every row has a figure from each; other workloads
    still run once."""
    result = _bench(
        [
            "--quick",
            "--backends",
            "asyncio,trio",
            "--workloads",
            "latency,timers,shutdown",
            "--latency-processes",
            "2",
            "--timer-processes",
            "3",
            "--timer-runs",
            "10",
            "--json",
            "out.json",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert document["config"]["latency_processes"] == 2
    assert document["config"]["timer_processes"] == 3
    pair = [["asyncio", "latency"], ["trio", "latency"]]
    timers = [["asyncio", "timers"], ["trio", "timers"]]
    assert document["order"] == [
        *pair,
        *pair,
        *timers,
        *timers,
        *timers,
        ["asyncio", "shutdown"],
        ["trio", "shutdown"],
    ]
    expected = {"latency": 2, "timers": 3, "shutdown": 1}
    for metric_id, entry in document["metrics"].items():
        runs = expected[entry["workload"]]
        assert all(len(v) == runs for v in entry["samples"].values()), metric_id
    assert "(processes in each: latency 2, timers 3, other workloads 1)" in result.stdout
