"""``eventsched bench --quick``: the JSON and the output of a real run.

No figure is asserted on: the machine is shared and timings move. The structure is.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from eventsched._bench._config import BACKENDS, METRICS, WORKLOADS
from eventsched._bench._document import SCHEMA
from eventsched._bench._report import format_report

pytestmark = pytest.mark.slow

Quick = tuple[dict[str, Any], str, str]
#: Rows of peers that are an optional extra: absent from a run where not installed.
_PEERS = {"apps.aiojobs_io": "aiojobs", "apps.pyee_fanout": "pyee"}


def _expected(metric_id: str) -> bool:
    peer = next((name for key, name in _PEERS.items() if metric_id.startswith(key)), None)
    return peer is None or importlib.util.find_spec(peer) is not None


def test_quick_json_describes_the_machine(quick: Quick) -> None:
    """The JSON names the Python, the package versions, the CPU count and the sizes used."""
    document, _, _ = quick
    assert document["schema"] == SCHEMA
    machine = document["machine"]
    assert machine["python"].startswith("3.")
    assert machine["cpu_count"] >= 1
    for package in ("eventsched", "anyio", "trio", "apscheduler"):
        assert machine["packages"][package]
    assert document["config"]["reps"] == 1
    assert document["config"]["workloads"] == list(WORKLOADS)


def test_quick_json_has_every_backend_and_workload(quick: Quick) -> None:
    """Every backend is listed (uvloop with a note when missing), every metric sampled on
    every backend it runs on, and the peers that are asyncio libraries not on trio."""
    document, _, _ = quick
    assert list(document["backends"]) == list(BACKENDS)
    available = [b for b, s in document["backends"].items() if s["available"]]
    assert {"asyncio", "trio"} <= set(available)
    for name, status in document["backends"].items():
        assert status["available"] or "not installed" in status["note"], name
    # One repetition, workload by workload, each on every backend in column order.
    assert document["order"] == [[b, w] for w in WORKLOADS for b in available]
    assert {m["workload"] for m in document["metrics"].values()} == set(WORKLOADS)
    for m in METRICS:
        if not _expected(m.id):
            assert m.id not in document["metrics"], m.id
            continue
        samples = document["metrics"][m.id]["samples"]
        expected = [b for b in available if not (m.asyncio_only and b == "trio")]
        assert sorted(samples) == sorted(expected), m.id
        assert all(len(values) == 1 for values in samples.values()), m.id
        assert document["summary"][m.id]["asyncio"]["ratio"] in (1.0, None), m.id


def test_quick_run_accounts_for_every_event_at_shutdown(quick: Quick) -> None:
    """The SIGTERM workload drains the full queue and loses nothing, on every backend."""
    document, _, _ = quick
    for values in document["metrics"]["shutdown.unaccounted"]["samples"].values():
        assert values == [0.0]
    for values in document["metrics"]["shutdown.handled"]["samples"].values():
        assert values == [1.0]


def test_quick_output_starts_with_an_indicative_verdict(quick: Quick) -> None:
    """The verdict block comes first, says a quick run's ratios are indicative only and
    gives no verdict words; the table with every workload follows."""
    document, stdout, _ = quick
    lines = stdout.splitlines()
    assert lines[0].startswith("VERDICT: INDICATIVE ONLY (1 repetition(s)")
    block = lines[: lines.index("")]
    assert any(line.strip().startswith("trio") for line in block)
    for word in ("faster", "slower", "better", "worse", "about the same"):
        assert not [line for line in block[1:] if word in line], word
    for workload in WORKLOADS:
        assert workload.upper() in stdout
    assert "x asyncio.Queue" in stdout
    assert format_report(document) in stdout


def test_progress_is_one_line_per_step_off_a_terminal(quick: Quick) -> None:
    """Off a terminal (the test's pipe) each process of the run is one progress line."""
    document, _, stderr = quick
    steps = [line for line in stderr.splitlines() if line.startswith("[")]
    assert len(steps) == len(document["order"])
    assert len(set(steps)) == len(steps)


def test_the_jobs_workload_runs_alone_with_its_size(bench_cli: Any, tmp_path: Path) -> None:
    """--workloads jobs --jobs 50: a run of that workload only, with rows of 5 and 50
    jobs, APScheduler 3 beside eventsched on asyncio and not on trio, and eventsched with
    a state file at 50 jobs on both; --job-gc-freeze is kept in the run's configuration
    and said in its summary."""
    result = bench_cli(
        [
            "--workloads",
            "jobs",
            "--backends",
            "asyncio,trio",
            "--reps",
            "1",
            "--jobs",
            "50",
            "--job-interval",
            "0.2",
            "--job-seconds",
            "0.5",
            "--job-gc-freeze",
            "--json",
            "jobs.json",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "jobs.json").read_text(encoding="utf-8"))
    assert document["order"] == [["asyncio", "jobs"], ["trio", "jobs"]]
    assert {e["workload"] for e in document["metrics"].values()} == {"jobs"}
    assert document["metrics"]["jobs.many_p99"]["label"] == "eventsched, 50 jobs: late p99"
    assert document["metrics"]["jobs.tenth_cpu_share"]["label"] == "eventsched, 5 jobs: CPU"
    assert set(document["metrics"]["jobs.aps_many_p50"]["samples"]) == {"asyncio"}
    assert set(document["metrics"]["jobs.many_p50"]["samples"]) == {"asyncio", "trio"}
    assert "(asyncio only)" in result.stdout
    # The fire times of the window are counted on every row; APScheduler reports no
    # coalesced ones, so it has no such row.
    metrics = document["metrics"]
    for backend in ("asyncio", "trio"):
        for row in ("many", "state_many"):
            fires, ran = (
                metrics[f"jobs.{row}_{w}"]["samples"][backend][0] for w in ("fires", "ran")
            )
            assert fires > 0
            assert 0 < ran <= fires
    assert "jobs.many_coalesced" in metrics
    assert "jobs.state_many_coalesced" in metrics
    assert "jobs.aps_many_coalesced" not in metrics
    assert metrics["jobs.state_many_cpu_share"]["label"] == "eventsched + state file, 50 jobs: CPU"
    assert "jobs against APScheduler 3" in result.stdout
    assert "with a state file / without" in result.stdout
    # The start-up on a file of 5 x 50 saved jobs, in a process of its own: nothing
    # written again (nothing changed since the file was written).
    assert metrics["jobs.start_wall_ms"]["label"] == "eventsched, 250 saved jobs: start-up"
    for backend in ("asyncio", "trio"):
        assert metrics["jobs.start_wall_ms"]["samples"][backend][0] > 0
        assert metrics["jobs.start_rows"]["samples"][backend] == [0]
    assert "start-up on a state file of 250 saved jobs" in result.stdout
    assert document["config"]["job_gc_freeze"] is True
    assert "(--job-gc-freeze: gc.freeze() in every row)" in result.stdout


def test_latency_and_timers_run_in_several_processes_per_repetition(
    bench_cli: Any, tmp_path: Path
) -> None:
    """--latency-processes 2 --timer-processes 3: each backend's latency process runs
    twice and its timers process three times in the repetition, interleaved (asyncio,
    trio, asyncio, trio, ...), and every row has a figure from each; other workloads
    still run once."""
    result = bench_cli(
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
