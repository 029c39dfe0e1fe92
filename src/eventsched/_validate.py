"""Argument checks shared by the scheduler and the job scheduler: one wording for both."""

from __future__ import annotations

import math

__all__ = ["check_int", "check_seconds"]


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    """Refuse anything but an int (not a bool) in ``minimum..maximum``, naming it."""
    if type(value) is not int or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value!r} must be an integer <= {maximum}")


def check_seconds(
    name: str, value: object, *, allow_zero: bool, maximum: float | None = None
) -> None:
    """Refuse anything but a finite, positive (or zero) number of seconds, naming it."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value > 0 or (allow_zero and value == 0)):  # type: ignore[operator]
        if maximum is None or value <= maximum:  # type: ignore[operator]
            return
        raise ValueError(f"{name}={value!r} must be at most {maximum:g} seconds")
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(f"{name}={value!r} must be a finite number of seconds {bound}")
