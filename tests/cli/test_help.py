"""``--help``, ``--version`` and what ``import eventsched`` leaves out."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import eventsched
from eventsched import EXIT_OK
from eventsched.cli._help import HELP
from eventsched.cli._helpgen import python_source, render_help, write_help
from eventsched.cli._settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.slow
def test_help_documents_every_setting() -> None:
    """``--help`` names every setting's flag and environment variable, and its default."""
    result = run("-m", "eventsched", "--help")
    assert result.returncode == EXIT_OK
    text = " ".join(result.stdout.split())  # undo the wrapping
    for field in Settings.model_fields:
        assert "--" + field.replace("_", "-") in text
        assert f"[env: {env_name(field)}]" in text
    assert text.count("(default:") == len(Settings.model_fields)
    assert "--version print the version and exit" in text


def test_cached_help_matches_the_model() -> None:
    """The fast ``--help`` text is what pydantic-settings renders (else run ``write_help()``)."""
    assert render_help() == HELP, (
        "stale: run `uv run python -c "
        "'from eventsched.cli._helpgen import write_help; write_help()'`"
    )


@pytest.mark.slow
def test_write_help_output_is_formatted(tmp_path: Path) -> None:
    """The generated module is the committed one and passes ``ruff format --check`` and ruff."""
    written = write_help(tmp_path / "_help.py")
    committed = ROOT / "src" / "eventsched" / "cli" / "_help.py"
    assert written.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8")
    config = str(ROOT / "pyproject.toml")
    for command in (["format", "--check", "--diff"], ["check"]):
        result = run("-m", "ruff", *command, "--config", config, str(written))
        assert result.returncode == 0, result.stdout + result.stderr


def test_generated_source_quotes_like_the_formatter() -> None:
    """Double quotes, unless the line holds one and no single quote; the text survives."""
    text = 'plain\nit\'s\nsay "hi"\nboth \' and "\n\tc:\\x\n'
    source = python_source(text)
    assert '    "plain\\n"\n' in source
    assert '    "it\'s\\n"\n' in source
    assert "    'say \"hi\"\\n'\n" in source
    namespace: dict[str, object] = {}
    exec(source, namespace)
    assert namespace["HELP"] == text


@pytest.mark.slow
@pytest.mark.parametrize("command", [["lesson", "--help"], ["bench", "--help"]])
def test_subcommand_help_has_no_empty_defaults(command: list[str]) -> None:
    """After a subcommand, "(default: None)" says nothing the description does not."""
    result = run("-m", "eventsched", *command)
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stdout.startswith(f"usage: eventsched {command[0]} ")
    assert "(default: None)" not in result.stdout


def test_version_is_the_installed_distributions() -> None:
    """``eventsched.__version__`` is the package metadata's version."""
    assert eventsched.__version__ == importlib.metadata.version("eventsched")
    assert "__version__" in eventsched.__all__


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--version"], ["--backend", "trio", "--version"]])
def test_version_flag(args: list[str]) -> None:
    """``eventsched --version`` prints the name and version, exit 0, nothing on stderr."""
    result = run("-m", "eventsched", *args)
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stdout == f"eventsched {eventsched.__version__}\n"
    assert result.stderr == ""


@pytest.mark.slow
def test_importing_the_library_loads_no_command_line() -> None:
    """``import eventsched`` loads neither the cli package nor pydantic-settings."""
    program = (
        "import sys, eventsched\n"
        "print(sorted(m for m in sys.modules if m.startswith("
        "('eventsched.cli', 'pydantic_settings', 'eventsched.lessons', 'eventsched._bench'))))"
    )
    result = run("-c", program)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_subcommand_is_not_offered_as_a_flag() -> None:
    """The unknown-flag hint lists a command's flags, not its subcommands (--report was)."""
    from eventsched._bench._command import Bench
    from eventsched.cli._config import _flags

    flags = _flags(Bench)
    assert "quick" in flags
    assert "report" not in flags
