"""Several processes, one schedule: each fire time runs once, also when one is killed.

Real processes (``programs/sharer.py``), two on asyncio and two on trio, share one
schema: 20 interval jobs every 50 ms for about 6 s. The runs are counted twice: from
the ``fires`` table (one row per claimed fire time) and from what the processes wrote
when each run ended. What is asserted is what is guaranteed: no fire time runs twice.
Gaps (fire times on a job's grid that neither ran nor were reported) are not yet
excluded when a process stops or is refused at the wrong moment: docs/instances.md
says what is left; ``gaps`` measures them.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.slow

SHARER = Path(__file__).parent / "programs" / "sharer.py"
STEP = timedelta(seconds=0.05)
BACKENDS = ["asyncio", "asyncio", "trio", "trio"]
#: Bound on a child's whole life (start-up imports take seconds on a loaded machine).
WAIT = 120.0


def start(
    state_url: str,
    backend: str,
    seconds: float,
    output: Path,
    length: float = 0.03,
    *,
    announce: bool = False,
) -> subprocess.Popen[str]:
    extra = ["announce"] if announce else []
    return subprocess.Popen(
        [
            sys.executable,
            str(SHARER),
            state_url,
            backend,
            str(seconds),
            str(output),
            str(length),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_started(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    line = child.stdout.readline()  # bounded by the child's own start-up; WAIT below
    assert line == "started\n", (line, child.stderr.read() if child.stderr else "")


def finish(child: subprocess.Popen[str]) -> None:
    _, err = child.communicate(timeout=WAIT)
    assert child.returncode == 0, err[-2000:]


def read_fires(postgres_url: str, schema: str) -> list[tuple[str, datetime, str | None]]:
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            f"SELECT job_id, fire_time, outcome FROM {schema}.fires"
        ).fetchall()
    return [(str(j), t, o) for j, t, o in rows]


def read_outputs(paths: list[Path]) -> tuple[Counter[tuple[str, datetime]], dict[str, set]]:
    runs: Counter[tuple[str, datetime]] = Counter()
    missed: dict[str, set[tuple[str, datetime]]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            parts = line.split()
            if parts[0] == "run":
                runs[parts[1], datetime.fromisoformat(parts[2])] += 1
            elif len(parts) == 4:  # a killed process may leave half a line
                missed.setdefault(parts[2], set()).add((parts[1], datetime.fromisoformat(parts[3])))
    return runs, missed


def gaps(fires: list[tuple[str, datetime, str | None]], reported: set) -> list:
    """Grid times between a job's first and last fire with no fire and no report."""
    found = []
    by_job: dict[str, set[datetime]] = {}
    for job_id, at, _ in fires:
        by_job.setdefault(job_id, set()).add(at)
    for job_id, times in by_job.items():
        at, last = min(times), max(times)
        while at <= last:
            if at not in times and (job_id, at) not in reported:
                found.append((job_id, at))
            at += STEP
    return found


def test_four_processes_run_each_fire_time_once(
    postgres_url: str, schema: str, state_url: str, tmp_path: Path
) -> None:
    outputs = [tmp_path / f"out{n}.txt" for n in range(len(BACKENDS))]
    children = [
        start(state_url, backend, 6, out) for backend, out in zip(BACKENDS, outputs, strict=True)
    ]
    for child in children:
        wait_started(child)
    for child in children:
        finish(child)
    fires = read_fires(postgres_url, schema)
    runs, _missed = read_outputs(outputs)
    assert len(fires) > 20 * 60, len(fires)  # the processes overlapped for seconds
    duplicates = {key: n for key, n in runs.items() if n > 1}
    assert duplicates == {}
    assert set(runs) <= {(j, t) for j, t, _ in fires}
    assert {o for _, _, o in fires} == {"ended"}  # every claim's end was recorded


def test_a_killed_process_duplicates_nothing_and_its_runs_are_reported(
    postgres_url: str, schema: str, state_url: str, tmp_path: Path
) -> None:
    outputs = [tmp_path / f"out{n}.txt" for n in range(len(BACKENDS) + 1)]
    # The victim's runs last 300 ms and it announces each start: killed right after one,
    # it surely has a run in progress.
    children = [
        start(state_url, backend, 6, out, 0.3 if n == 2 else 0.03, announce=n == 2)
        for n, (backend, out) in enumerate(zip(BACKENDS, outputs[:-1], strict=True))
    ]
    for child in children:
        wait_started(child)
    victim = children[2]  # a trio process
    assert victim.stdout is not None
    with concurrent.futures.ThreadPoolExecutor(1) as reader:
        try:
            line = reader.submit(victim.stdout.readline).result(timeout=WAIT)
        finally:
            os.kill(victim.pid, signal.SIGKILL)  # also ends a readline still waiting
    assert line.startswith("start "), line
    victim.communicate(timeout=WAIT)
    assert victim.returncode == -signal.SIGKILL
    # The next process to load the schema finds the victim's unfinished fires.
    heir = start(state_url, "asyncio", 1, outputs[-1])
    wait_started(heir)
    for child in [*children[:2], children[3], heir]:
        finish(child)
    fires = read_fires(postgres_url, schema)
    runs, missed = read_outputs(outputs)
    assert {key: n for key, n in runs.items() if n > 1} == {}
    assert set(runs) <= {(j, t) for j, t, _ in fires}
    interrupted = {(j, t) for j, t, o in fires if o == "interrupted"}
    assert interrupted, "the victim had no run in progress when killed"
    assert missed.get("interrupted") == interrupted, (len(interrupted), missed.keys())
    outcomes = Counter(o for _, _, o in fires)
    assert set(outcomes) == {"ended", "interrupted"}, outcomes


def test_three_processes_starting_on_an_empty_database_all_run(
    postgres_url: str, schema: str, state_url: str, tmp_path: Path
) -> None:
    """Nothing exists yet: the three race to create the schema, and all three run jobs."""
    outputs = [tmp_path / f"out{n}.txt" for n in range(3)]
    children = [
        start(state_url, backend, 3, out)
        for backend, out in zip(["asyncio", "trio", "asyncio"], outputs, strict=True)
    ]
    for child in children:
        wait_started(child)
    for child in children:
        finish(child)
    runs, _missed = read_outputs(outputs)
    assert {key: n for key, n in runs.items() if n > 1} == {}
    assert all(path.read_text().count("run ") > 0 for path in outputs)
