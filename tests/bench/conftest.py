"""Shared by the bench tests: the command in a subprocess, and one quick run's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BenchCli = Callable[..., subprocess.CompletedProcess[str]]

#: A saved ``bench --quick --json`` run (1 repetition, every workload and backend).
QUICK_RUN = Path(__file__).with_name("data") / "quick-run.json"


def run_bench_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m eventsched bench ARGS`` in ``cwd``, bounded at 300 s."""
    return subprocess.run(
        [sys.executable, "-m", "eventsched", "bench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **env},
    )


#: Sizes below ``--quick``'s for the shared run: the tests check its structure, never a
#: figure, and these take about 40% off its wall time (mostly the jobs and apps rows).
SMALLER = [
    *("--events", "5000", "--latency-events", "300", "--overflow-events", "1000"),
    *("--timer-runs", "10", "--shutdown-events", "100", "--memory-events", "5000"),
    *("--apps-events", "400", "--jobs", "100", "--job-interval", "0.2", "--job-seconds", "0.4"),
]


@pytest.fixture
def bench_cli() -> BenchCli:
    """Run the bench command line (see :func:`run_bench_cli`)."""
    return run_bench_cli


@pytest.fixture
def saved_run() -> dict[str, Any]:
    """A fresh copy of the saved quick run's document."""
    document: dict[str, Any] = json.loads(QUICK_RUN.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="session")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    """One ``bench --quick --json`` run shared by the tests: (document, stdout, stderr)."""
    where = tmp_path_factory.mktemp("bench")
    result = run_bench_cli(["--quick", *SMALLER, "--json", "out.json"], where)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads((where / "out.json").read_text(encoding="utf-8"))
    return document, result.stdout, result.stderr
