"""Several processes, one schedule: each fire time runs once, also when one is killed.

Real processes (``programs/sharer.py``), two on asyncio and two on trio, share one
schema: 20 interval jobs every 50 ms for about 6 s. The runs are counted twice: from
the ``fires`` table (one row per claimed fire time) and from what the processes wrote
when each run ended. Asserted: no fire time runs twice, and no gap: every fire time on
a job's grid from its first claimed fire time to its last has a row in ``fires`` (a
run, or a run interrupted and reported) or was reported missed. Those two edges are
the window because before the first claim no process had the job's row, and after the
last one every process had stopped (a fire time given back at shutdown has its claim
deleted, so it is past the last row).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.slow

SHARER = Path(__file__).parent / "programs" / "sharer.py"
WAKER = Path(__file__).parent / "programs" / "waker.py"
STEP = timedelta(seconds=0.05)
BACKENDS = ["asyncio", "asyncio", "trio", "trio"]
#: Bound on a child's whole life (start-up imports take seconds on a loaded machine).
WAIT = 120.0


def start(
    state_url: str,
    backend: str,
    seconds: float | None,
    output: Path,
    length: float = 0.03,
    *,
    announce: bool = False,
    lease: float = 5.0,
    max_instances: int = 100,
) -> subprocess.Popen[str]:
    extra = [
        *(["announce"] if announce else []),
        f"lease={lease}",
        f"max_instances={max_instances}",
    ]
    """A sharer for ``seconds``, or (None) until :func:`tell_to_stop`."""
    return subprocess.Popen(
        [
            sys.executable,
            str(SHARER),
            state_url,
            backend,
            "stdin" if seconds is None else str(seconds),
            str(output),
            str(length),
            *extra,
        ],
        stdin=subprocess.PIPE if seconds is None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_started(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    line = child.stdout.readline()  # bounded by the child's own start-up; WAIT below
    assert line == "started\n", (line, child.stderr.read() if child.stderr else "")


def tell_to_stop(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.write("stop\n")
    child.stdin.flush()


def finish(child: subprocess.Popen[str]) -> None:
    _, err = child.communicate(timeout=WAIT)
    assert child.returncode == 0, err[-2000:]


def run_to_end(children: list[subprocess.Popen[str]]) -> None:
    """All started (each has its schedule), then each run to its own end."""
    for child in children:
        wait_started(child)
    for child in children:
        finish(child)


def read_fires(postgres_url: str, schema: str) -> list[tuple[str, datetime, str | None]]:
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            f"SELECT job_id, fire_time, outcome FROM {schema}.fires"
        ).fetchall()
    return [(str(j), t, o) for j, t, o in rows]


def read_claims(
    postgres_url: str, schema: str, process: str
) -> list[tuple[str, datetime, str | None]]:
    """The fires claimed by ``process``."""
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            f"SELECT job_id, fire_time, outcome FROM {schema}.fires WHERE claimed_by = %s",
            [process],
        ).fetchall()
    return [(str(j), t, o) for j, t, o in rows]


def read_outputs(paths: list[Path]) -> tuple[Counter[tuple[str, datetime]], dict[str, set]]:
    runs, missed, _ = read_reports(paths)
    return runs, missed


def read_reports(
    paths: list[Path],
) -> tuple[
    Counter[tuple[str, datetime]], dict[str, set], list[tuple[int, str, datetime, datetime]]
]:
    """Runs, missed fire times by reason, and (output, job, fire_time, detected_at) of
    each fire time reported ``interrupted``."""
    runs: Counter[tuple[str, datetime]] = Counter()
    missed: dict[str, set[tuple[str, datetime]]] = {}
    interrupted: list[tuple[int, str, datetime, datetime]] = []
    for n, path in enumerate(paths):
        for line in path.read_text().splitlines():
            parts = line.split()
            if parts[0] == "run":
                runs[parts[1], datetime.fromisoformat(parts[2])] += 1
            elif parts[0] == "unlisted" and len(parts) == 5:
                # The grid times after the last listed, up to the last one missed.
                at, last = datetime.fromisoformat(parts[3]), datetime.fromisoformat(parts[4])
                while (at := at + STEP) <= last:
                    missed.setdefault(parts[2], set()).add((parts[1], at))
            elif parts[0] == "missed" and len(parts) == 5:  # a killed one may leave half
                missed.setdefault(parts[2], set()).add((parts[1], datetime.fromisoformat(parts[3])))
                if parts[2] == "interrupted":
                    at, found = (datetime.fromisoformat(p) for p in parts[3:5])
                    interrupted.append((n, parts[1], at, found))
    return runs, missed, interrupted


def read_spans(paths: list[Path]) -> dict[str, list[tuple[float, float, int]]]:
    """Each job's runs as (start, end, output), by start; a killed process's last
    line may be cut."""
    spans: dict[str, list[tuple[float, float, int]]] = {}
    for n, path in enumerate(paths):
        for line in path.read_text().splitlines():
            parts = line.split()
            if parts[0] == "span" and len(parts) == 4:
                spans.setdefault(parts[1], []).append((float(parts[2]), float(parts[3]), n))
    return {job_id: sorted(found) for job_id, found in spans.items()}


def describe(fires: list[tuple[str, datetime, str | None]], job_id: str) -> str:
    """A job's first and last fire times, for a failure message."""
    times = sorted(t for j, t, _ in fires if j == job_id)
    return f"{job_id}: {len(times)} fires from {times[0]} to {times[-1]}"


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
    launched = datetime.now(UTC)
    children = [
        start(state_url, backend, 6, out) for backend, out in zip(BACKENDS, outputs, strict=True)
    ]
    run_to_end(children)
    fires = read_fires(postgres_url, schema)
    runs, missed = read_outputs(outputs)
    assert len(fires) > 20 * 60, len(fires)  # the processes overlapped for seconds
    duplicates = {key: n for key, n in runs.items() if n > 1}
    assert duplicates == {}
    assert set(runs) <= {(j, t) for j, t, _ in fires}
    # Every claim's end was recorded; a fire time given back at a stop, once others had
    # moved on, stays unfinished for a live process to report interrupted. Once the
    # first process stops (6 s after it started, so not before launched + 6 s) the
    # others stop within moments, before a lease runs out: such claims may then wait
    # for the next process to start (tests/postgres/test_store.py covers that
    # take-over). They are near the end, and never ran.
    stops = launched + timedelta(seconds=6 - 0.5)
    unfinished = {(j, t) for j, t, o in fires if o is None}
    assert {o for _, _, o in fires} <= {"ended", "interrupted", None}
    assert all(t >= stops for _, t in unfinished), sorted(unfinished)[:3]
    assert not unfinished & set(runs), sorted(unfinished & set(runs))[:3]
    assert missed.get("interrupted", set()) == {(j, t) for j, t, o in fires if o == "interrupted"}
    found = gaps(fires, set().union(*missed.values()))
    assert found == [], (found[:3], describe(fires, found[0][0]))


def test_max_instances_holds_across_processes_and_each_miss_is_reported_once(
    postgres_url: str, schema: str, state_url: str, tmp_path: Path
) -> None:
    """max_instances=1, runs of 120 ms every 50 ms, in three processes (asyncio, trio,
    asyncio): never two runs of a job at once in any of them, and every fire time in
    between is run or reported missed (``max_instances``) by exactly one process."""
    backends = ["asyncio", "trio", "asyncio"]
    outputs = [tmp_path / f"out{n}.txt" for n in range(len(backends))]
    launched = datetime.now(UTC)
    children = [
        start(state_url, backend, 4, out, 0.12, max_instances=1)
        for backend, out in zip(backends, outputs, strict=True)
    ]
    run_to_end(children)
    fires = read_fires(postgres_url, schema)
    runs, missed = read_outputs(outputs)
    assert {key: n for key, n in runs.items() if n > 1} == {}
    spans = read_spans(outputs)
    overlaps = [
        (job_id, before, after)
        for job_id, found in spans.items()
        for before, after in itertools.pairwise(found)
        if after[0] < before[1]
    ]
    assert overlaps == [], overlaps[:3]
    # Runs of one job went to several processes: the limit was shared, not per process.
    assert any(len({n for _, _, n in found}) > 1 for found in spans.values()), spans
    limited = missed.get("max_instances", set())
    assert len(limited) > 20, len(limited)  # runs last longer than the interval
    # A fire time missed is never run. Claimed ahead (0.1 s), it is checked against
    # max_instances again when it comes (_jobs/_giveback.at_fire_time): missed then, its
    # claim is finished in the store (an open one would count as a run elsewhere).
    ran_too = sorted(limited & set(runs))
    assert ran_too == [], ran_too[:3]
    stops = launched + timedelta(seconds=4 - 0.5)
    left_open = sorted((j, t) for j, t, o in fires if o is None and (j, t) in limited)
    assert [key for key in left_open if key[1] < stops] == [], left_open[:3]
    # Each reported once: no fire time in the reports of two processes.
    by_output = [read_outputs([path])[1].get("max_instances", set()) for path in outputs]
    twice = [key for a, b in itertools.combinations(by_output, 2) for key in a & b]
    assert twice == [], sorted(twice)[:3]
    # No gap, the stops included: a stop waits for the pass saving its claims, whose
    # misses are then events (JobScheduler.wait_idle).
    found = gaps(fires, set().union(*missed.values()))
    assert found == [], (found[:3], describe(fires, found[0][0]))


def registered(postgres_url: str, schema: str, pid: int) -> list[str]:
    """The ids under which the process ``pid`` is registered in ``processes``."""
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            f"SELECT id FROM {schema}.processes WHERE pid = %s", [pid]
        ).fetchall()
    return [str(row[0]) for row in rows]


def until_unregistered(postgres_url: str, schema: str, process: str, limit: float) -> None:
    """Wait (bounded) until ``process`` has no row: a live one presumed it dead, and
    marked its unfinished fires ``interrupted`` in the same transaction."""
    deadline = time.monotonic() + limit
    query = f"SELECT count(*) FROM {schema}.processes WHERE id = %s"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        while connection.execute(query, [process]).fetchone() != (0,):
            assert time.monotonic() < deadline, f"{process} not presumed dead in {limit} s"
            time.sleep(0.05)  # no notification says so: the row is looked at


def test_a_killed_process_duplicates_nothing_and_a_survivor_reports_its_runs(
    postgres_url: str, schema: str, state_url: str, tmp_path: Path
) -> None:
    """One of four is killed mid-run; a live one reports its runs within the lease (1 s
    here) and a poll, and the grid stays whole.

    The survivors run until the victim's runs are taken over: when each ran for a fixed
    time, the victim could be killed so late after the first survivors started (their
    starts are seconds apart on a loaded machine) that they were stopping when its
    lease ran out, and none reported its runs.
    """
    lease = 1.0
    outputs = [tmp_path / f"out{n}.txt" for n in range(len(BACKENDS))]
    # The victim's runs last 300 ms and it announces each start: killed right after one,
    # it surely has a run in progress.
    children = [
        start(
            state_url,
            backend,
            None,
            out,
            0.3 if n == 2 else 0.03,
            announce=n == 2,
            lease=lease,
        )
        for n, (backend, out) in enumerate(zip(BACKENDS, outputs, strict=True))
    ]
    survivors = [child for n, child in enumerate(children) if n != 2]
    victim = children[2]  # a trio process
    try:
        for child in children:
            wait_started(child)
        assert victim.stdout is not None
        with concurrent.futures.ThreadPoolExecutor(1) as reader:
            try:
                line = reader.submit(victim.stdout.readline).result(timeout=WAIT)
                [victim_id] = registered(postgres_url, schema, victim.pid)
            finally:
                os.kill(victim.pid, signal.SIGKILL)  # also ends a readline still waiting
                killed_at = datetime.now(UTC)
        assert line.startswith("start "), line
        victim.communicate(timeout=WAIT)
        assert victim.returncode == -signal.SIGKILL
        until_unregistered(postgres_url, schema, victim_id, WAIT)
    finally:
        for child in survivors:  # all at once, then each to its end
            tell_to_stop(child)
        told = datetime.now(UTC)
    for child in survivors:
        finish(child)
    fires = read_fires(postgres_url, schema)
    runs, missed, reports = read_reports(outputs)
    assert {key: n for key, n in runs.items() if n > 1} == {}
    assert set(runs) <= {(j, t) for j, t, _ in fires}
    interrupted = {(j, t) for j, t, o in fires if o == "interrupted"}
    victims = {(j, t) for j, t, o in read_claims(postgres_url, schema, victim_id)}
    assert victims, "the victim had no run in progress when killed"
    assert victims <= interrupted
    assert missed.get("interrupted") == interrupted, (len(interrupted), missed.keys())
    # Each reported once, by a survivor; the victim's within the lease and two polls
    # (and slack for a loaded machine), not at some later start. (A line per fire time:
    # the victim had several runs of a job in flight.) Others are claims a survivor
    # handed back at its stop after another had moved the row on, reported by a
    # survivor still running (docs/instances.md): their time is that of the stops.
    assert len(reports) == len(interrupted)
    assert {n for n, _, _, _ in reports} <= {0, 1, 3}
    late = [at - killed_at for _, j, t, at in reports if (j, t) in victims]
    assert max(late) < timedelta(seconds=lease + 2 + 3), max(late)
    outcomes = Counter(o for _, _, o in fires)
    assert set(outcomes) <= {"ended", "interrupted", None}, outcomes
    # As in the four-process test: a claim given back at a stop once others had moved
    # on stays unfinished when every survivor is stopping too (none takes it over: see
    # docs/instances.md), for the next start to report; only once told to stop, and
    # never for a fire time that ran.
    stops = told - timedelta(seconds=0.5)
    unfinished = {(j, t) for j, t, o in fires if o is None}
    assert all(t >= stops for _, t in unfinished), sorted(unfinished)[:3]
    assert not unfinished & set(runs), sorted(unfinished & set(runs))[:3]
    assert gaps(fires, set().union(*missed.values())) == []


def test_a_job_resumed_in_one_process_fires_on_time_in_another(state_url: str) -> None:
    """B (trio) holds a date job paused and never polls in time; A (asyncio) resumes it
    and exits before it is due: B hears of it through NOTIFY and runs it on time."""
    holder, resumer = (
        subprocess.Popen(
            [sys.executable, str(WAKER), state_url, backend, role],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend, role in (("trio", "hold"), ("asyncio", "resume"))
    )
    for child in (holder, resumer):  # imported (the slow part of a start under load)
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    # Then the fire time: 4 s leaves the two starts on the database and the resume time.
    run_date = datetime.now(UTC) + timedelta(seconds=4)
    assert holder.stdin is not None
    holder.stdin.write(f"{run_date.isoformat()}\n")
    holder.stdin.flush()
    wait_started(holder)
    resumer_out, resumer_err = resumer.communicate(f"{run_date.isoformat()}\n", timeout=WAIT)
    assert resumer.returncode == 0, resumer_err[-2000:]
    assert resumer_out == "resumed\n"
    assert datetime.now(UTC) < run_date, "the resumer outlived the fire time: no test"
    out, err = holder.communicate(timeout=WAIT)
    assert holder.returncode == 0, err[-2000:]
    ran, fire_time, started_at = out.split()
    assert (ran, datetime.fromisoformat(fire_time)) == ("ran", run_date)
    assert datetime.fromisoformat(started_at) - run_date < timedelta(seconds=0.5)


def test_three_processes_starting_on_an_empty_database_all_run(
    postgres_url: str, schema: str, state_url: str, tmp_path: Path
) -> None:
    """Nothing exists yet: the three race to create the schema, and all three run jobs."""
    outputs = [tmp_path / f"out{n}.txt" for n in range(3)]
    children = [
        start(state_url, backend, 3, out)
        for backend, out in zip(["asyncio", "trio", "asyncio"], outputs, strict=True)
    ]
    run_to_end(children)
    runs, _missed = read_outputs(outputs)
    assert {key: n for key, n in runs.items() if n > 1} == {}
    assert all(path.read_text().count("run ") > 0 for path in outputs)
