"""The public face: everything in ``__all__`` exists, and nothing public is missing from it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import eventsched


def test_all_names_exist_once() -> None:
    """Every name in __all__ is importable and listed once."""
    assert len(set(eventsched.__all__)) == len(eventsched.__all__)
    for name in eventsched.__all__:
        assert hasattr(eventsched, name), name


def test_public_names_are_all_in_all() -> None:
    """Public attributes of the package (not submodules, not private) are all in __all__."""
    public = {
        name
        for name, value in vars(eventsched).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "logger"}
    }
    assert public <= set(eventsched.__all__), public - set(eventsched.__all__)


def test_the_library_logs_nothing_until_enabled() -> None:
    """A program that imports and runs eventsched sees none of its records until it enables them."""
    program = textwrap.dedent(
        """
        import anyio
        from loguru import logger
        import eventsched

        records = []
        logger.remove()
        logger.add(records.append, format="{message}")

        async def main():
            async with eventsched.EventScheduler() as scheduler:
                await scheduler.emit("x")

        anyio.run(main)
        silent = len(records)
        logger.enable("eventsched")
        anyio.run(main)
        print(silent, len(records) > 0)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["0", "True"], out.stderr


def test_all_lists_exactly_the_public_names() -> None:
    """__all__ names nothing that is not a public attribute of the package (and __version__)."""
    public = {
        name
        for name, value in vars(eventsched).items()
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "logger"}
    }
    # PostgresJobStore is imported when first named: it needs the postgres extra.
    assert set(eventsched.__all__) == public | eventsched._LAZY


def test_importing_the_library_loads_none_of_the_tools() -> None:
    """``import eventsched`` loads no command line, settings, lessons, benchmark code, nor
    tracing and OpenTelemetry (the ``otel`` extra)."""
    program = textwrap.dedent(
        """
        import sys
        import eventsched
        import eventsched.testing
        tools = (
            "pydantic_settings",
            "eventsched.cli",
            "eventsched.lessons",
            "eventsched._bench",
            "eventsched.tracing",
            "opentelemetry",
        )
        print(" ".join(sorted(name for name in sys.modules if name.startswith(tools))) or "-")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["-"], out.stdout
