"""The README's promises: its Python examples run, its quick start and settings are current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from eventsched.cli._settings import Settings, env_name

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", TEXT, flags=re.DOTALL | re.MULTILINE)


def test_readme_has_python_examples() -> None:
    """The README holds the library, event type, handler and job examples."""
    assert len(PYTHON_BLOCKS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize(
    "code", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))]
)
def test_readme_python_example_runs(code: str, tmp_path: Path) -> None:
    """Each Python block of the README runs to completion without error or warning."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_quick_start_commands_unchanged() -> None:
    """The quick start still shows the two commands newcomers are told to run."""
    quick = TEXT.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "uv run python -m eventsched" in quick
    assert "uv run pytest" in quick


def test_settings_table_lists_every_setting() -> None:
    """Each setting has a row in the README with its flag and environment name."""
    rows = [line for line in TEXT.splitlines() if line.startswith("| `--")]
    for field in Settings.model_fields:
        flag = "--" + field.replace("_", "-")
        assert any(f"`{flag}` | `{env_name(field)}`" in row for row in rows), field
    assert len(rows) == len(Settings.model_fields)
