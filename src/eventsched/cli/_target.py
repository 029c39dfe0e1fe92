"""``eventsched run MODULE:ATTRIBUTE``: finding the user's scheduler.

The target names a module and, after the colon, an attribute in it (dotted for a
nested one): an :class:`~eventsched.EventScheduler`, or a callable taking no arguments
that returns one (a factory, so that building the scheduler has no import-time side
effects). The current directory is searched first, as ``python -m`` does.

A target that cannot be found is the operator's mistake: one line. An exception raised
while importing the user's module or calling the factory is the user's bug: its
traceback is shown, since the line that failed is in their code.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from typing import Final

from .._scheduler import EventScheduler

__all__ = ["TargetError", "TargetFailed", "load_scheduler"]

_MODULE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_SHOWN: Final = 80


class TargetError(Exception):
    """The target cannot be used; the message is one line for the operator."""


class TargetFailed(Exception):
    """The user's own code raised while loading the target; ``__cause__`` is its error."""


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[: _SHOWN - 3] + "...")


def load_scheduler(target: str) -> EventScheduler:
    """The :class:`EventScheduler` that ``target`` (``module:attribute``) names."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not _MODULE.fullmatch(module_name) or not _MODULE.fullmatch(attribute):
        raise TargetError(
            f"run: target {_shown(target)} must be MODULE:ATTRIBUTE, e.g. myapp.tasks:scheduler"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing target module (or a package on its way) is the operator's
        # mistake; a module the user's code imports and lacks is the user's bug.
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise TargetError(
                f"run: no module named {exc.name!r} (from target {_shown(target)}; "
                "run from the directory that holds it, or install it)"
            ) from None
        raise TargetFailed(f"importing {module_name!r} failed") from exc
    except Exception as exc:
        raise TargetFailed(f"importing {module_name!r} failed") from exc
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise TargetError(
                f"run: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    if isinstance(value, EventScheduler):
        return value
    if callable(value):
        return _from_factory(value, target)
    raise TargetError(
        f"run: {_shown(target)} is a {type(value).__qualname__}, not an EventScheduler "
        "or a function returning one"
    )


def _from_factory(factory: object, target: str) -> EventScheduler:
    assert callable(factory)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have none: let the call decide
        signature = None
    if signature is not None:
        required = [
            parameter.name
            for parameter in signature.parameters.values()
            if parameter.default is parameter.empty
            and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]
        if required:
            raise TargetError(
                f"run: {_shown(target)} needs arguments ({', '.join(required)}); a factory "
                "must take none"
            )
    if inspect.iscoroutinefunction(factory):
        raise TargetError(f"run: {_shown(target)} is async; a factory must be a plain function")
    try:
        value = factory()
    except Exception as exc:
        raise TargetFailed(f"calling {target!r} failed") from exc
    if not isinstance(value, EventScheduler):
        raise TargetError(
            f"run: {_shown(target)}() returned a {type(value).__qualname__}, not an EventScheduler"
        )
    return value
