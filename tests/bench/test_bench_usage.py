"""``eventsched bench`` and ``bench report``: bad flags, paths and files are one line and
exit code 2, before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

#: Sizes that make a run short, should a check be missing and the run start.
_SHORT = ["--quick", "--backends", "asyncio", "--workloads", "shutdown"]


def _one_line(result: Any) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    line: str = lines[0]
    return line


def test_unknown_backend_is_one_line_and_exit_2(bench_cli: Any, tmp_path: Path) -> None:
    """A misspelt backend stops before any run, with one line naming the choices."""
    line = _one_line(bench_cli(["--backends", "asyncio,curio"], tmp_path))
    assert (
        line
        == "eventsched bench: bad --backends 'asyncio,curio': choose from asyncio, uvloop, trio"
    )


def test_bad_size_flag_is_one_line_and_exit_2(bench_cli: Any, tmp_path: Path) -> None:
    """A bad value for a bench flag names the subcommand, the flag and the value."""
    line = _one_line(bench_cli(["--reps", "0"], tmp_path))
    assert line == "eventsched: bad flag bench --reps = '0': input should be greater than 0"


def test_json_into_a_missing_directory_is_refused_before_the_run(
    bench_cli: Any, tmp_path: Path
) -> None:
    """--json /no/such/dir/x.json: one line naming the flag and the directory, no run
    (it used to run the whole bench, then print a traceback)."""
    # Relative to the run's directory, so that the line is not cut (long paths are).
    target = Path("no", "such", "x.json")
    line = _one_line(bench_cli([*_SHORT, "--json", str(target)], tmp_path))
    assert line == (
        f"eventsched bench: bad --json {str(target)!r}: directory {target.parent} does not exist"
    )


def test_compare_with_a_file_that_is_not_a_run_is_refused(bench_cli: Any, tmp_path: Path) -> None:
    """--compare on a file holding {} names the file and what it lacks (it used to end
    the run with a KeyError)."""
    (tmp_path / "empty.json").write_text("{}\n", encoding="utf-8")
    line = _one_line(bench_cli([*_SHORT, "--compare", "empty.json"], tmp_path))
    assert line.startswith("eventsched bench: bad --compare 'empty.json': not an eventsched")


def test_compare_with_a_missing_file_is_refused(bench_cli: Any, tmp_path: Path) -> None:
    """A --compare file that does not exist is named, with the system's reason."""
    line = _one_line(bench_cli([*_SHORT, "--compare", "gone.json"], tmp_path))
    assert line == "eventsched bench: bad --compare 'gone.json': No such file or directory"


def test_plot_into_a_directory_is_refused(bench_cli: Any, tmp_path: Path) -> None:
    """--plot naming a directory is refused before the run (with matplotlib installed)."""
    pytest.importorskip("matplotlib")
    line = _one_line(bench_cli([*_SHORT, "--plot", str(tmp_path)], tmp_path))
    assert line.endswith("is a directory; give a file name")


def test_plot_without_matplotlib_is_one_line_and_exit_2(bench_cli: Any, tmp_path: Path) -> None:
    """--plot without matplotlib says what to install, before the long run starts."""
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    line = _one_line(bench_cli(["--plot", "chart.png"], tmp_path, PYTHONPATH=str(shadow.parent)))
    assert "--plot needs matplotlib" in line
    assert "eventsched[plot]" in line


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["gone.json"], "bad bench report file 'gone.json': No such file or directory"),
        (["empty.json"], "bad bench report file 'empty.json': not an eventsched bench"),
        (["text.json"], "bad bench report file 'text.json': not JSON"),
        (["a.json", "a.json", "a.json"], "bad bench report files 'a.json a.json a.json'"),
    ],
)
def test_report_refuses_files_that_are_not_runs(
    bench_cli: Any, tmp_path: Path, files: list[str], expected: str
) -> None:
    """bench report names the file at fault and why, in one line."""
    (tmp_path / "empty.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "text.json").write_text("not json\n", encoding="utf-8")
    line = _one_line(bench_cli(["report", *files], tmp_path))
    assert line.startswith(f"eventsched bench: {expected}")


def test_report_refuses_a_plot_path_it_cannot_write(bench_cli: Any, tmp_path: Path) -> None:
    """bench report --plot into a missing directory is refused before anything prints."""
    pytest.importorskip("matplotlib")
    saved = Path(__file__).with_name("data") / "quick-run.json"
    line = _one_line(bench_cli(["report", str(saved), "--plot", "no/such/x.png"], tmp_path))
    assert line == "eventsched bench: bad --plot 'no/such/x.png': directory no/such does not exist"
