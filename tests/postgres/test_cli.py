"""STATE_URL on the command line: the demo on a shared store, and each refusal in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from eventsched import EXIT_CONFIG, EXIT_OK

pytestmark = pytest.mark.slow

WAIT = 60.0


def eventsched(*args: str, code: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("STATE_FILE", "STATE_URL")}
    environ.update(env)
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "eventsched"]
    return subprocess.run(
        [*command, *args], env=environ, capture_output=True, text=True, timeout=WAIT, check=False
    )


def test_the_demo_runs_on_a_shared_store(state_url: str, schema: str, postgres_url: str) -> None:
    import psycopg

    result = eventsched("--duration", "2.5", STATE_URL=state_url)
    assert result.returncode == EXIT_OK, result.stderr[-2000:]
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute(f"SELECT count(*) FROM {schema}.fires").fetchone()
    assert row is not None
    assert row[0] > 0


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--state-file", "x.state"],
            {"STATE_URL": "postgresql://u@127.0.0.1/test"},
            "STATE_FILE (--state-file) and STATE_URL (--state-url): give one of them",
        ),
        (["--state-url", "mysql://u:hunter2@h/db"], {}, "expected a postgresql://"),
        (
            ["--state-url", "postgresql://u:hunter2@127.0.0.1:1/test", "--duration", "1"],
            {},
            "cannot connect",
        ),
        (
            # A server that answers and refuses the login (no such role).
            ["--state-url", "postgresql://no_such_role_here:hunter2@127.0.0.1:5432/test"],
            {},
            "cannot connect",
        ),
    ],
    ids=["with-state-file", "not-postgresql", "unreachable", "refused-login"],
)
def test_a_bad_state_url_is_one_line_and_exit_2(
    args: list[str], env: dict[str, str], expected: str, tmp_path: object
) -> None:
    result = eventsched(*args, **env)
    assert result.returncode == EXIT_CONFIG, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if expected in line]
    assert len(lines) == 1, result.stderr[-2000:]
    assert "hunter2" not in result.stderr + result.stdout


def test_without_psycopg_state_url_says_how_to_get_it() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None; from eventsched.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    result = eventsched("--state-url", "postgresql://u@h/db", code=code)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.strip().splitlines()[-1] == (
        "eventsched: STATE_URL (--state-url) needs psycopg: pip install 'eventsched[postgres]'"
    )


def test_jobs_lists_a_postgresql_schedule_read_only(state_url: str, postgres_url: str) -> None:
    import json

    import anyio

    from eventsched import EventScheduler, PostgresJobStore

    async def schedule() -> None:
        scheduler = EventScheduler()
        scheduler.configure_jobs(store=PostgresJobStore(state_url))
        scheduler.add_job(anyio.lowlevel.checkpoint, "interval", seconds=0.05, id="tick")
        scheduler.add_job(anyio.lowlevel.checkpoint, "interval", hours=1, id="idle", paused=True)
        done = anyio.Event()
        scheduler.on("job_completed", lambda event: done.set())
        with anyio.fail_after(30):
            async with scheduler:
                await done.wait()
                scheduler.stop()

    anyio.run(schedule)
    result = eventsched("jobs", "--state-url", state_url, "--json")
    assert result.returncode == EXIT_OK, result.stderr[-2000:]
    listed = json.loads(result.stdout)
    jobs = {job["id"]: job for job in listed["jobs"]}
    assert set(jobs) == {"idle", "tick"}
    assert (jobs["idle"]["paused"], jobs["tick"]["paused"]) == (True, False)
    assert jobs["tick"]["last_outcome"] == "ended"
    assert jobs["idle"]["last_outcome"] is None  # never claimed
    assert listed["not_recorded"] == []
    table = eventsched("jobs", STATE_URL=state_url)
    assert table.returncode == EXIT_OK, table.stderr[-2000:]
    assert table.stdout.splitlines()[0].split()[:2] == ["ID", "TRIGGER"]
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == ["idle", "tick"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--state-url", "postgresql://u:hunter2@127.0.0.1:1/test"], "cannot connect"),
        (["--state-url", "postgresql://u@h/db", "--state-file", "x"], "not both"),
    ],
    ids=["unreachable", "both"],
)
def test_jobs_refuses_in_one_line(args: list[str], expected: str) -> None:
    result = eventsched("jobs", *args)
    assert result.returncode == EXIT_CONFIG, result.stderr[-2000:]
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if expected in line
    ]
    assert "hunter2" not in result.stderr + result.stdout
