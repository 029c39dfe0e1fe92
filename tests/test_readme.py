"""The documentation's promises: the README's example runs, its quick start is current,
every relative link resolves, the reference pages name what the code has, and nothing in
the repository cites a file outside it."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import eventsched
import eventsched.testing
import eventsched.tracing
from eventsched import EventType
from eventsched import _exit as exit_codes

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
TEXT = README.read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", TEXT, flags=re.DOTALL | re.MULTILINE)
#: The README stays a front page; the rest lives in docs/.
README_MAX_LINES = 200

# Markdown pages whose relative links must resolve: the README and every page of docs/.
PAGES = [README, *sorted(DOCS.glob("*.md"))]

_FENCED = re.compile(r"^(```|~~~).*?^\1", flags=re.DOTALL | re.MULTILINE)
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", flags=re.MULTILINE)
_EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//|#)")

# Written in two parts, so that this file does not cite them itself.
_OUTSIDE_CITATIONS = ("NOTES" + ".md", ".." + "/shared")
# What the citation check reads: every text the repository ships or keeps.
_CITATION_AREAS = ["README.md", "pyproject.toml", "docs", "src", "tests", "benchmarks"]
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def relative_links(markdown: str) -> list[str]:
    """The relative link targets of a Markdown text, anchors cut, code blocks left out."""
    text = _FENCED.sub("", markdown)
    targets = _INLINE_LINK.findall(text) + _REFERENCE_LINK.findall(text)
    return [target.split("#", 1)[0] for target in targets if not _EXTERNAL.match(target)]


def _link_cases() -> list[tuple[Path, str]]:
    return [
        (page, target)
        for page in PAGES
        for target in dict.fromkeys(relative_links(page.read_text(encoding="utf-8")))
    ]


def _settings_module() -> ModuleType:
    """The settings model's module."""
    return importlib.import_module("eventsched.cli._settings")


# -- the README ------------------------------------------------------------------------


def test_readme_has_a_python_example() -> None:
    """The README shows the library in use, in a block this file runs."""
    assert len(PYTHON_BLOCKS) >= 1


def test_readme_is_a_front_page() -> None:
    """The README stays short; the details live in docs/."""
    lines = TEXT.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines"


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
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_quick_start_commands_unchanged() -> None:
    """The quick start still shows the two commands newcomers are told to run."""
    quick = TEXT.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "uv run python -m eventsched" in quick
    assert "uv run pytest" in quick


# -- links and citations ---------------------------------------------------------------


def test_link_finder_sees_every_kind_of_link() -> None:
    """The link check reads inline, image and reference links, and nothing in code."""
    sample = (
        "See [the guide](docs/guide.md#jobs), ![chart](img/c.png), [site](https://x.org),\n"
        '[top](#top), [titled](a/b.md "Title").\n'
        "[ref]: docs/design.md\n"
        "```python\nx = d['k'](1)  # [not](a-link.md)\n```\n"
    )
    assert relative_links(sample) == ["docs/guide.md", "img/c.png", "a/b.md", "docs/design.md"]


@pytest.mark.parametrize(
    ("page", "target"),
    _link_cases(),
    ids=[f"{page.relative_to(ROOT)}->{target}" for page, target in _link_cases()],
)
def test_relative_link_points_at_a_file(page: Path, target: str) -> None:
    """A relative link in README.md or docs/*.md names a file or folder that exists."""
    assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_every_page_has_links_checked() -> None:
    """The README and the docs pages it links to are among the pages checked."""
    linked = {(README.parent / target).resolve() for target in relative_links(TEXT)}
    for name in ("guide.md", "configuration.md", "design.md"):
        assert (DOCS / name).resolve() in linked, name
        assert DOCS / name in PAGES, name


@pytest.mark.parametrize("area", _CITATION_AREAS)
def test_nothing_cites_files_outside_the_repository(area: str) -> None:
    """No file cites notes kept outside the repository: they are not there to read."""
    root = ROOT / area
    files = [root] if root.is_file() else sorted(root.rglob("*"))
    assert files, f"{area} has no files"
    offenders = []
    for path in files:
        if not path.is_file() or _SKIP_DIRS.intersection(path.parts):
            continue
        content = path.read_bytes()
        cited = [name for name in _OUTSIDE_CITATIONS if name.encode() in content]
        if cited:
            offenders.append(f"{path.relative_to(ROOT)} ({', '.join(cited)})")
    assert not offenders, "files citing something outside the repository: " + "; ".join(offenders)


# -- the reference pages name what the code has ----------------------------------------


def test_settings_table_lists_every_setting() -> None:
    """Each setting has a row in docs/configuration.md with its flag and environment name."""
    settings = _settings_module()
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `--")]
    for field in settings.Settings.model_fields:
        flag = "--" + field.replace("_", "-")
        env = settings.env_name(field)
        assert any(f"`{flag}` | `{env}`" in row for row in rows), field
    assert len(rows) == len(settings.Settings.model_fields)


def test_exit_codes_table_matches_the_code() -> None:
    """docs/configuration.md lists every exit code with its value and name."""
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for name in exit_codes.__all__:
        value = getattr(exit_codes, name)
        assert f"| {value} | `{name}` |" in text, name


def test_guide_documents_every_public_name() -> None:
    """Every name of eventsched.__all__, eventsched.testing.__all__ and
    eventsched.tracing.__all__ is in the guide."""
    text = (DOCS / "guide.md").read_text(encoding="utf-8")
    names = [*eventsched.__all__, *eventsched.testing.__all__, *eventsched.tracing.__all__]
    missing = [name for name in names if not re.search(rf"`{re.escape(name)}\b", text)]
    assert not missing, f"not in docs/guide.md: {missing}"


def test_guide_documents_every_runtime_event() -> None:
    """The payload table of the guide has a row for every event type eventsched emits."""
    text = (DOCS / "guide.md").read_text(encoding="utf-8")
    for member in EventType:
        assert f"| `{member.name}` |" in text, member.name
