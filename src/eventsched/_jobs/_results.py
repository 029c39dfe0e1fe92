"""How runs are described in logs and events: durations, and return values made safe."""

from __future__ import annotations

__all__ = ["format_duration", "summarize_result"]


def format_duration(seconds: float) -> str:
    """One way to write a duration in logs: ``0.087 ms`` below a second, else ``1.250 s``."""
    if seconds < 1:
        return f"{seconds * 1000:.3f} ms"
    return f"{seconds:.3f} s"


def summarize_result(value: object, limit: int = 100) -> str:
    """A short, safe description of a job's return value for ``JOB_COMPLETED``.

    Only plain scalars are shown (strings cut to ``limit`` characters, control
    characters escaped); anything else is described by its type and size, so that no
    ``__repr__`` of yours runs, leaks a secret or floods the event.
    """
    # The base classes' own reprs, so that a subclass's __repr__ (yours) never runs.
    if value is None or value is True or value is False:
        return repr(value)
    if isinstance(value, int):
        bits = int.bit_length(value)
        if bits > 4 * limit:
            # repr of a huge int is slow, and past sys.get_int_max_str_digits() an error
            # that would end the run after the job itself had succeeded.
            return f"<int of {bits} bits>"
        return _shorten(int.__repr__(value), limit)
    if isinstance(value, float):
        return _shorten(float.__repr__(value), limit)
    if isinstance(value, str):
        return _shorten(str.__repr__(str.__getitem__(value, slice(limit + 1))), limit)
    if isinstance(value, bytes):
        return _shorten(bytes.__repr__(bytes.__getitem__(value, slice(limit + 1))), limit)
    kind = type(value).__qualname__
    if isinstance(value, list | tuple | set | frozenset | dict):
        return f"<{kind} of {len(value)} item(s)>"
    return f"<{kind}>"


def _shorten(text: str, limit: int) -> str:
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 3] + "..."
