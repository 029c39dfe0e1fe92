"""What the bench prints from a run's document: the verdict, the table, the comparison of
two runs, the chart. On a saved quick run and on small documents built here."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from eventsched._bench._compare import compare_runs
from eventsched._bench._jobsreport import jobs_lines, kept_up
from eventsched._bench._report import _cell, format_report, summarize
from eventsched._bench._verdict import verdict_lines

_ENTRIES = {
    "throughput.eventsched_1": ("throughput", "eventsched, 1 handler task", "events/s", "higher"),
    "latency.eventsched_p50": ("latency", "eventsched p50", "us", "lower"),
    "latency.eventsched_p99": ("latency", "eventsched p99", "us", "lower"),
}


def _document(samples: dict[str, dict[str, list[float]]], reps: int = 5) -> dict[str, Any]:
    """A run's document with these samples (metric id -> backend -> one per repetition)."""
    document: dict[str, Any] = {
        "schema": "eventsched-bench/3",
        "started": "2026-12-03T06:00:00+00:00",
        "machine": {
            "python": "3.11.7",
            "cpu_count": 2,
            "processor": "cpu",
            "packages": {"anyio": "4.16.0"},
            "load_average": None,
            "source": {"commit": "a" * 40, "modified": []},
        },
        "config": {"reps": reps, "trials": 5, "workloads": ["throughput", "latency"]},
        "backends": {name: {"available": True, "note": ""} for name in ("asyncio", "trio")},
        "baseline": "asyncio",
        "metrics": {
            key: dict(
                zip(("workload", "label", "unit", "better"), _ENTRIES[key], strict=True),
                samples=per,
            )
            for key, per in samples.items()
        },
    }
    document["summary"] = summarize(document)
    return document


def _verdict_row(document: dict[str, Any], what: str) -> str:
    return next(line for line in verdict_lines(document) if what in line)


def test_verdict_words_need_a_ratio_past_the_noise() -> None:
    """With 5 repetitions: trio at half asyncio's rate, steadily, is 'slower'; a latency
    5% higher is 'about the same' (under the 15% floor); a p99 1.3x higher but spread
    0.8-1.8x from repetition to repetition is 'about the same' too."""
    document = _document(
        {
            "throughput.eventsched_1": {"asyncio": [100.0] * 5, "trio": [50.0, 51, 49, 50, 50]},
            "latency.eventsched_p50": {"asyncio": [10.0] * 5, "trio": [10.5] * 5},
            "latency.eventsched_p99": {"asyncio": [10.0] * 5, "trio": [8.0, 13, 13, 18, 14]},
        }
    )
    assert _verdict_row(document, "throughput").endswith("0.50x  slower")
    assert _verdict_row(document, "latency p50").endswith("1.05x  about the same")
    assert _verdict_row(document, "latency p99").endswith("1.30x  about the same")
    assert "5 repetitions" in verdict_lines(document)[0]


def test_verdict_word_follows_the_direction_that_is_better() -> None:
    """A lower latency is 'lower (better)', a higher rate 'faster'."""
    document = _document(
        {
            "throughput.eventsched_1": {"asyncio": [100.0] * 5, "trio": [200.0] * 5},
            "latency.eventsched_p50": {"asyncio": [10.0] * 5, "trio": [5.0] * 5},
        }
    )
    assert _verdict_row(document, "throughput").endswith("2.00x  faster")
    assert _verdict_row(document, "latency p50").endswith("0.50x  lower (better)")


def test_a_quick_run_gets_no_verdict_words() -> None:
    """One repetition: the ratios are printed, marked indicative, without a word."""
    document = _document({"throughput.eventsched_1": {"asyncio": [100.0], "trio": [50.0]}}, reps=1)
    lines = verdict_lines(document)
    assert lines[0].startswith("VERDICT: INDICATIVE ONLY")
    assert _verdict_row(document, "throughput").endswith("0.50x")


def test_report_redraws_a_saved_run(saved_run: dict[str, Any]) -> None:
    """The saved quick run prints its verdict first, explains every row prefix once, and
    says which peers trio cannot run."""
    text = format_report(saved_run)
    lines = text.splitlines()
    assert lines[0].startswith("VERDICT: INDICATIVE ONLY")
    for prefix in ("'ref:'", "'ceiling:'", "'machine:'"):
        assert text.count(prefix) == 1, prefix
    pyee = next(line for line in lines if line.startswith("ref: pyee, fan-out to 10 "))
    assert pyee.endswith("(asyncio only)")
    assert "JOBS" in text
    assert "APScheduler 3, 1000 jobs" in text
    peers = "on trio, these asyncio libraries cannot run: APScheduler 3, aiojobs, asyncio.Queue"
    assert peers in text


def test_comparison_says_better_or_worse_by_direction(saved_run: dict[str, Any]) -> None:
    """From one run to another where trio's rate halved and its latency halved: the rate
    is worse, the latency better, though both moved by -50%."""
    after = copy.deepcopy(saved_run)
    for key in ("throughput.eventsched_1", "latency.eventsched_p50"):
        after["metrics"][key]["samples"]["trio"] = [
            v / 2 for v in after["metrics"][key]["samples"]["trio"]
        ]
    after["summary"] = summarize(after)
    result = compare_runs(saved_run, after)
    assert any(
        "eventsched, 1 handler task on trio" in line and "(-50%, worse)" in line
        for line in result.worse
    )
    assert any(
        "eventsched p50 on trio" in line and "(-50%, better)" in line for line in result.better
    )
    assert any("throughput.eventsched_1 trio/asyncio" in line for line in result.worse)
    assert any("latency.eventsched_p50 trio/asyncio" in line for line in result.better)


def test_comparison_warns_when_the_runs_differ(saved_run: dict[str, Any]) -> None:
    """Different sizes, commits and machines are each named, with the values."""
    after = copy.deepcopy(saved_run)
    after["config"]["events"] = 1234
    after["machine"]["source"] = {"commit": "b" * 40, "modified": []}
    after["machine"]["cpu_count"] = 64
    after["machine"]["packages"]["anyio"] = "9.9"
    warnings = compare_runs(saved_run, after).warnings
    assert any("sizes differ" in w and "-> 1234" in w for w in warnings)
    assert any("code differs" in w and "b" * 40 in w for w in warnings)
    assert any("machine differs" in w and "cpu_count 2 -> 64" in w for w in warnings)
    assert any("anyio" in w and "-> 9.9" in w for w in warnings)
    assert any("indicative only" in w for w in warnings)


def test_a_run_agrees_with_itself(saved_run: dict[str, Any]) -> None:
    """Comparing a run with itself: every ratio within the tolerance, nothing moved, and
    the machine's pauses shown beside, never as a ratio."""
    result = compare_runs(saved_run, saved_run)
    assert result.total > 0
    assert result.agree == result.total
    assert result.better == result.worse == []
    assert "machine pauses" in result.text
    assert "stall" not in result.text.replace("machine pauses", "")


@pytest.mark.slow
def test_report_command_on_saved_files(bench_cli: Any, tmp_path: Path) -> None:
    """bench report A.json prints the table; A.json B.json the comparison; --plot draws
    the chart (when matplotlib is installed)."""
    saved = str(Path(__file__).with_name("data") / "quick-run.json")
    one = bench_cli(["report", saved], tmp_path)
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("VERDICT: INDICATIVE ONLY")
    two = bench_cli(["report", saved, saved], tmp_path)
    assert two.returncode == 0, two.stderr
    assert two.stdout.startswith("from ")
    assert "0 changes better, 0 worse" in two.stdout
    pytest.importorskip("matplotlib")
    drawn = bench_cli(["report", saved, "--plot", "chart.png"], tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")


def test_a_range_that_rounds_to_one_figure_is_not_shown() -> None:
    """Shares of 97.51% and 97.54% both print 97.5%: the cell shows no (97.5%-97.5%)."""
    alike = {"median": 0.9752, "min": 0.9751, "max": 0.9754, "n": 5, "ratio": None}
    assert _cell(alike, "fraction", show_ratio=False) == "97.5%"
    apart = {"median": 0.9752, "min": 0.95, "max": 0.9754, "n": 5, "ratio": None}
    assert _cell(apart, "fraction", show_ratio=False) == "97.5% (95.0%-97.5%)"


def test_cells_wider_than_their_column_stay_apart() -> None:
    """A cell with a long range and a ratio fills its whole column; a space still
    separates it from the cell before it."""
    document = _document(
        {
            "latency.eventsched_p50": {
                "asyncio": [0.692, 0.732, 0.755, 0.70, 0.74],
                "trio": [0.0868, 0.109, 0.115, 0.10, 0.11],
            }
        }
    )
    row = next(line for line in format_report(document).splitlines() if "eventsched p50" in line)
    assert row.endswith("0.732 (0.692-0.755) 0.109 (0.0868-0.115) x0.15")


@pytest.mark.slow
def test_a_saved_default_run_gets_verdict_words(bench_cli: Any, tmp_path: Path) -> None:
    """A saved default run (5 repetitions, on a shared machine) prints a verdict with
    words and the run's noise, and a row whose ratio stood out of it says which way."""
    saved = str(Path(__file__).with_name("data") / "default-run.json")
    result = bench_cli(["report", saved], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("VERDICT: eventsched on each backend against asyncio, 5 repetitions")
    assert "noise: ratios move +-" in lines[0]
    block = lines[: lines.index("")]
    io = [line for line in block if "I/O handlers, hundreds in flight" in line]
    assert io[0].endswith("faster")  # uvloop, 1.46x
    assert io[1].endswith("slower")  # trio, 0.34x


def _jobs_document(aps: dict[str, list[float]], trio: dict[str, list[float]]) -> dict[str, Any]:
    """A jobs run of three repetitions: APScheduler's figures (asyncio) and trio's."""
    samples: dict[str, dict[str, list[float]]] = {}
    for what, values in aps.items():
        samples[f"jobs.aps_many_{what}"] = {"asyncio": values}
    for what, values in trio.items():
        samples[f"jobs.many_{what}"] = {"trio": values}
    document = _document({}, reps=3)
    document["config"].update(jobs=10_000, job_interval=1.0, workloads=["jobs"])
    document["metrics"] = {
        key: {"workload": "jobs", "label": key, "unit": "ms", "better": "lower", "samples": per}
        for key, per in samples.items()
    }
    return document


def test_jobs_p99_ratio_counts_only_repetitions_where_apscheduler_kept_up() -> None:
    """APScheduler ran every fire time with a p99 of 4 ms in repetitions 1 and 3; in
    repetition 2 it was saturated (p99 300 ms). The p99 ratio is trio's over those two
    only (2.0x and 1.0x: median 1.5x), and the line says so; the CPU ratio takes all
    three; the fire times are summed, with trio's coalesced ones shown."""
    document = _jobs_document(
        aps={
            "p99": [4.0, 300.0, 4.0],
            "cpu_share": [0.5, 0.9, 0.5],
            "fires": [100.0, 100.0, 100.0],
            "ran": [100.0, 100.0, 100.0],
        },
        trio={
            "p99": [8.0, 30.0, 4.0],
            "cpu_share": [0.25, 0.45, 0.5],
            "fires": [100.0, 100.0, 100.0],
            "ran": [100.0, 95.0, 100.0],
            "coalesced": [0.0, 5.0, 0.0],
            "unreported": [0.0, 0.0, 0.0],
        },
    )
    assert kept_up(document, "many") == [True, False, True]
    text = "\n".join(jobs_lines(document))
    assert "CPU trio 0.50x (0.50-1.00)" in text
    assert "the 2 of 3 repetitions where APScheduler kept up: trio 1.50x (1.00-2.00)" in text
    assert "APScheduler 300 of 300; trio 295 of 300 (coalesced 5, unreported 0)" in text


def test_jobs_p99_ratio_is_not_given_when_apscheduler_never_kept_up() -> None:
    """A reference that missed fire times in every repetition gives no p99 ratio."""
    document = _jobs_document(
        aps={"p99": [4.0] * 3, "cpu_share": [0.5] * 3, "fires": [100.0] * 3, "ran": [99.0] * 3},
        trio={"p99": [8.0] * 3, "cpu_share": [0.25] * 3, "fires": [100.0] * 3, "ran": [100.0] * 3},
    )
    text = "\n".join(jobs_lines(document))
    assert "APScheduler kept up in none of the 3 repetitions: no ratio" in text


def _add_trio(document: dict[str, Any], samples: dict[str, list[float]]) -> None:
    """More jobs metrics, each with trio's samples."""
    for key, values in samples.items():
        document["metrics"][key] = {
            "workload": "jobs",
            "label": key,
            "unit": "ms",
            "better": "lower",
            "samples": {"trio": values},
        }


def test_the_state_file_row_is_read_against_the_row_without_one() -> None:
    """Each repetition's state-file row over the plain row of the same backend and
    repetition; no line from a run saved before that row existed."""
    aps = {"p99": [4.0, 4.0, 4.0], "fires": [100, 100, 100], "ran": [100, 100, 100]}
    plain = {"cpu_share": [0.4, 0.5, 0.6], "p99": [2.0, 2.0, 2.0]}
    plain |= {"fires": [100, 100, 100], "ran": [100, 100, 100]}
    document = _jobs_document(aps, plain)
    assert not any("state file" in line for line in jobs_lines(document))
    state = {"cpu_share": [0.52, 0.6, 0.9], "p99": [3.0, 2.0, 5.0]}
    state |= {"fires": [100, 100, 100], "ran": [100, 99, 100]}
    _add_trio(document, {f"jobs.state_many_{what}": values for what, values in state.items()})
    text = "\n".join(jobs_lines(document))
    assert "with a state file / without" in text
    assert "CPU trio 1.30x (1.20-1.50)" in text
    assert "late p99 trio 1.50x (1.00-2.50)" in text
    assert "fire times run: trio 299 of 300" in text


def test_the_start_up_row_gives_each_backend_its_time_and_rows_written() -> None:
    aps = {"p99": [4.0, 4.0, 4.0], "fires": [100, 100, 100], "ran": [100, 100, 100]}
    trio = {"p99": [2.0, 2.0, 2.0], "fires": [100, 100, 100], "ran": [100, 100, 100]}
    document = _jobs_document(aps, trio)
    assert not any("start-up" in line for line in jobs_lines(document))
    _add_trio(document, {"jobs.start_wall_ms": [120.0, 100.0, 140.0], "jobs.start_rows": [0, 2, 0]})
    text = "\n".join(jobs_lines(document))
    assert "start-up on a state file of 50,000 saved jobs" in text
    assert "trio 120 ms (100-140), rows written 2" in text
