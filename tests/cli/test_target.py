"""`eventsched run MODULE:ATTRIBUTE`: finding the user's scheduler, and each bad target."""

from __future__ import annotations

import itertools
import re
import textwrap
from pathlib import Path

import pytest

from eventsched import EventScheduler
from eventsched.cli._target import TargetError, TargetFailed, load_scheduler

_names = itertools.count()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A directory on the path and a module name unused in this process."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path, f"es_target_app_{next(_names)}"


def _write(app: tuple[Path, str], source: str) -> str:
    directory, name = app
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def test_a_scheduler_object_and_a_nested_attribute(app: tuple[Path, str]) -> None:
    """module:attribute and module:object.attribute both find the scheduler itself."""
    name = _write(
        app,
        """
        from types import SimpleNamespace
        from eventsched import EventScheduler
        scheduler = EventScheduler(queue_size=7)
        holder = SimpleNamespace(inner=scheduler)
        """,
    )
    found = load_scheduler(f"{name}:scheduler")
    assert isinstance(found, EventScheduler)
    assert load_scheduler(f"{name}:holder.inner") is found


def test_a_factory_is_called_once(app: tuple[Path, str]) -> None:
    """A zero-argument function returning a scheduler is called, and its result used."""
    name = _write(
        app,
        """
        from eventsched import EventScheduler
        calls = []
        def create(size=3):
            calls.append(size)
            return EventScheduler(queue_size=size)
        """,
    )
    assert isinstance(load_scheduler(f"{name}:create"), EventScheduler)
    module = __import__(name)
    assert module.calls == [3]


@pytest.mark.parametrize(
    ("target", "source", "message"),
    [
        ("no_colon_here", "", "must be MODULE:ATTRIBUTE"),
        ("{name}:", "", "must be MODULE:ATTRIBUTE"),
        ("es_no_such_module_anywhere:app", "", "no module named 'es_no_such_module_anywhere'"),
        ("{name}:missing", "x = 1", "has no attribute 'missing'"),
        ("{name}:x", "x = 1", "is a int, not an EventScheduler"),
        ("{name}:make", "def make(a, b): ...", "needs arguments (a, b)"),
        ("{name}:make", "async def make(): ...", "is async"),
        ("{name}:make", "def make(): return 42", "returned a int, not an EventScheduler"),
    ],
)
def test_bad_targets_are_one_line(
    app: tuple[Path, str], target: str, source: str, message: str
) -> None:
    """Each kind of bad target is one line saying what is wrong."""
    name = _write(app, source)
    with pytest.raises(TargetError, match=re.escape(message)) as caught:
        load_scheduler(target.format(name=name))
    assert "\n" not in str(caught.value)


def test_errors_in_the_users_code_keep_their_traceback(app: tuple[Path, str]) -> None:
    """An exception in the module (even a missing import of its own) is the user's: kept."""
    name = _write(app, "import es_dependency_the_user_forgot\n")
    with pytest.raises(TargetFailed) as caught:
        load_scheduler(f"{name}:app")
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    other = _write((app[0], app[1] + "_b"), "def make():\n    raise RuntimeError('boom')\n")
    with pytest.raises(TargetFailed) as caught:
        load_scheduler(f"{other}:make")
    assert str(caught.value.__cause__) == "boom"
