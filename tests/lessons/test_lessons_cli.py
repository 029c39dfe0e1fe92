"""The lesson registry and the ``lesson`` command; each lesson's claims are asserted in
the other files of this directory, on both backends."""

from __future__ import annotations

import importlib
import io
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import eventsched.lessons
from eventsched.lessons import LESSONS, find_lesson, run_lesson

#: Bound on one ``python -m eventsched lesson`` child.
CHILD_LIMIT = 60.0
#: The lessons, in reading order (the list numbers them from 1).
ORDER = (
    "task-groups",
    "starting-tasks",
    "exception-groups",
    "cancel-scopes",
    "level-triggered",
    "deadlines",
    "memory-streams",
    "bounded-buffers",
    "limiting-concurrency",
    "checkpoints",
    "threads",
    "correlation",
    "shutdown",
    "ctrl-c",
    "timers",
    "testing-time",
)


# -- the registry ------------------------------------------------------------------------


def test_every_lesson_module_is_registered() -> None:
    """Each public module of the package is one lesson, listed once, with its file."""
    modules = {
        info.name
        for info in pkgutil.iter_modules(eventsched.lessons.__path__)
        if not info.name.startswith("_")
    }
    assert {lesson.module.rsplit(".", 1)[-1] for lesson in LESSONS} == modules
    assert tuple(lesson.name for lesson in LESSONS) == ORDER
    for lesson in LESSONS:
        assert lesson.path.is_file()
        assert importlib.import_module(lesson.module).LESSON is lesson


def test_unknown_lesson_names_the_known_ones() -> None:
    """Asking for a lesson that does not exist lists the ones that do, with numbers."""
    with pytest.raises(LookupError, match=r"1\. task-groups"):
        find_lesson("no-such-lesson")
    for number in ("0", str(len(LESSONS) + 1), "-1"):
        with pytest.raises(LookupError):
            find_lesson(number)


def test_a_lesson_is_found_by_its_number_in_the_list() -> None:
    """``lesson 3`` is the third lesson of the list, as the list numbers it."""
    for number, name in enumerate(ORDER, 1):
        assert find_lesson(str(number)).name == name


def test_every_lesson_module_cites_nothing_outside_the_repository() -> None:
    """No lesson refers to notes that are not in the repository."""
    for lesson in LESSONS:
        text = lesson.path.read_text(encoding="utf-8").lower()
        # Written in parts, so that this file does not cite them itself.
        for phrase in ("earlier notes", "notes" + ".md", ".." + "/shared"):
            assert phrase not in text, (lesson.name, phrase)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_run_prints_one_teaches_line_and_one_verdict_line(backend: str) -> None:
    """The runner's frame: what it teaches first, one verdict with the headline last."""
    lesson = find_lesson("exception-groups")
    out = io.StringIO()
    outcome = run_lesson(lesson, backend, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Teaches: {lesson.title} (exception-groups, on {backend})"
    verdict = "HELD" if outcome.held else "DID NOT HOLD"
    assert [line for line in lines if line.startswith("Verdict: ")] == [
        f"Verdict: {outcome.headline}: {verdict}"
    ]
    assert lines[-1].startswith("Verdict: ")
    assert outcome.held


# -- the command line ----------------------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"BACKEND", "LOG_LEVEL"}}
    return subprocess.run(
        [sys.executable, "-m", "eventsched", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_LIMIT,
        check=False,
    )


@pytest.mark.slow
def test_cli_lists_the_lessons(tmp_path: Path) -> None:
    """``eventsched lesson`` lists every lesson, one line each, and exits 0."""
    result = run_cli("lesson", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert len(listed) == len(LESSONS)
    for number, (line, lesson) in enumerate(zip(listed, LESSONS, strict=True), 1):
        assert line.split()[:2] == [f"{number}.", lesson.name]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["lesson", "task-groups"], id="asyncio"),
        pytest.param(["lesson", "task-groups", "--backend", "trio"], id="trio"),
        pytest.param(["--backend", "trio", "lesson", "task-groups"], id="trio-shared-flag"),
        pytest.param(["lesson", "1"], id="by-number"),
    ],
)
def test_cli_runs_a_lesson(tmp_path: Path, args: list[str]) -> None:
    """A lesson prints its idea, figures and verdict on the chosen backend, and its file."""
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    backend = "trio" if "trio" in args else "asyncio"
    out = result.stdout
    for heading in ("The idea", "What was measured", "asyncio and trio", "Read the code:"):
        assert heading in out
    assert f"The claim (HELD on {backend})" in out
    assert str(find_lesson("task-groups").path) in out
    lines = out.splitlines()
    # One line says what the lesson teaches, one gives the verdict.
    assert lines[0] == f"Teaches: {find_lesson('task-groups').title} (task-groups, on {backend})"
    verdicts = [line for line in lines if line.startswith("Verdict: ")]
    assert len(verdicts) == 1
    assert verdicts[0].endswith(": HELD")
    assert "siblings" in verdicts[0]


@pytest.mark.slow
def test_cli_help_gives_each_default_once(tmp_path: Path) -> None:
    """``lesson --help`` says each default once, and none of them is "None"."""
    result = run_cli("lesson", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "(default: None)" not in text
    assert text.count("(default:") == 2
    assert "(default: list)" in text
    assert "(default: shared)" in text


@pytest.mark.slow
def test_cli_unknown_lesson_is_a_usage_error(tmp_path: Path) -> None:
    """An unknown lesson name is one line on stderr naming the lessons, and exit code 2."""
    result = run_cli("lesson", "no-such-lesson", cwd=tmp_path)
    assert result.returncode == 2
    assert "no lesson named or numbered 'no-such-lesson'" in result.stderr
    assert "testing-time" in result.stderr
