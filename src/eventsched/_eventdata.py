"""Event data: checked, copied read-only, and sized, before an event may hold it.

Event data is JSON-compatible: str keys; str, int, float, bool and None values;
lists and mappings of them. What a mapping really holds is what is checked and
stored (a dict subclass is read through ``dict.items``, anything else once through
its ``items()``), so that no method of the user's can show the checks one thing and
the copy another.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, NoReturn

from ._exceptions import InvalidEventError
from ._invoke import describe_error

__all__ = ["FrozenDict", "exact_size", "freeze_data"]


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses changes, so an accepted event cannot be altered later.

    It subclasses ``dict`` (rather than wrapping it) so that ``json.dumps`` and every
    other consumer of plain dicts keep working on event data. Building one validates
    and copies its contents as event data is (nested mappings become ``FrozenDict``,
    lists become tuples), so a ``FrozenDict`` is always JSON-compatible and read-only.

    :raises InvalidEventError: the contents are not acceptable event data
    """

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> FrozenDict:
        try:
            return _freeze_mapping(dict(*args, **kwargs), "data")[0]
        except InvalidEventError as error:
            _report_invalid(error)
            raise

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # dict.__init__ would update the dict in place: calling it again on accepted
        # data must not change it. The contents were set in __new__.
        pass

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("event data is read-only; build a new event instead")

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __reduce__(self) -> tuple[Callable[..., FrozenDict], tuple[dict[str, Any]]]:
        return (FrozenDict, (dict(self),))


# dict.__new__ plus dict.update build a FrozenDict without running __new__ and
# __init__ above (for data already checked): little more than a plain dict copy.
_dict_new = dict.__new__
_dict_update = dict.update


def _frozen_copy(data: Mapping[str, Any]) -> FrozenDict:
    frozen: FrozenDict = _dict_new(FrozenDict)
    _dict_update(frozen, data)
    return frozen


_EMPTY: FrozenDict = _dict_new(FrozenDict)


# running scheduler, so that the refusal is counted there (see EventScheduler).
_invalid_hook: ContextVar[Callable[[InvalidEventError], None] | None] = ContextVar(
    "eventsched_invalid_hook", default=None
)


# check skip json.dumps for all but events near the limit.
_MAX_FLOAT_CHARS = 24
# Ints in this range are at most 20 characters, inside the flat per-item bound; others
# are sized by their bit length (and checked for a decimal form past _INT_CHECK_BITS).
_INT_MAX = 2**63 - 1
_INT_MIN = -(2**63)
_INT_CHECK_BITS = 4096


def _refuse(message: str) -> NoReturn:
    raise InvalidEventError(message)


def _report_invalid(error: InvalidEventError) -> None:
    # Only for refusals outside any emit (Event.create, FrozenDict): an emit counts its
    # own in the scheduler it was made to, which with nested schedulers is not always
    # the one whose hook is current.
    hook = _invalid_hook.get()
    if hook is not None:
        hook(error)


def _freeze_value(value: object, path: str) -> tuple[object, int]:
    """Return a read-only copy of a JSON value and an upper bound of its encoded size."""
    kind = type(value)
    if kind is str:
        _check_text(value, path)  # type: ignore[arg-type]
        return value, 6 * len(value) + 2  # type: ignore[arg-type]
    if kind is int:
        return value, _int_size(value, path)  # type: ignore[arg-type]
    if kind is bool:
        return value, 5
    if value is None:
        return None, 4
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            _refuse(f"event data at {path} is {value!r}, which JSON cannot represent")
        return value, _MAX_FLOAT_CHARS
    # Subclasses of the scalars (StrEnum, IntEnum members) are stored as the plain value
    # json.dumps would write, through the base class so that no method of theirs runs.
    if isinstance(value, str):
        return _freeze_value(str.__str__(value), path)
    if isinstance(value, int):
        return _freeze_value(int.__int__(value), path)
    if isinstance(value, float):
        return _freeze_value(float.__float__(value), path)
    if isinstance(value, Mapping):
        return _freeze_mapping(value, path)
    if isinstance(value, list | tuple):
        items: list[object] = []
        size = 2
        for index, item in enumerate(value):
            frozen, item_size = _freeze_value(item, f"{path}[{index}]")
            items.append(frozen)
            size += item_size + 1
        return tuple(items), size
    _refuse(
        f"event data at {path} is of type {kind.__name__}; allowed are str, int, float, "
        "bool, None, lists and mappings with str keys"
    )


def _check_text(text: str, path: str) -> None:
    # A lone surrogate has no UTF-8 form, so JSON output could not be written; isascii()
    # is O(1) and true for nearly all text, so the encode runs only for the rest.
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            _refuse(f"event data at {path} holds text that is not valid Unicode (a lone surrogate)")


def _int_size(value: int, path: str) -> int:
    bits = value.bit_length()
    if bits > _INT_CHECK_BITS:
        # Past sys.get_int_max_str_digits() an int has no decimal form: json.dumps
        # would raise ValueError where every reader expects an encodable event.
        try:
            int.__repr__(value)
        except ValueError:
            _refuse(f"event data at {path} is an int of {bits} bits, too large to write as JSON")
    return (bits * 10 // 33) + 2


def _snapshot(data: Mapping[Any, Any], path: str) -> dict[Any, Any]:
    """A plain dict of what ``data`` really holds, read once.

    A dict subclass is read through ``dict.items`` (its real storage), so that an
    overridden ``items()``, ``keys()`` or ``__iter__`` cannot show the checks one
    thing while the copy stores another. Any other mapping is read once through its
    own ``items()``, and what that gave is what is checked and stored.
    """
    try:
        if isinstance(data, dict):
            return dict(dict.items(data))
        return dict(data.items())
    except RecursionError:
        raise
    except Exception as error:  # user code: a broken mapping is bad data, not a crash
        _refuse(f"event data at {path} could not be read as a mapping: {describe_error(error)}")


def _freeze_mapping(data: Mapping[Any, Any], path: str) -> tuple[FrozenDict, int]:
    if data.__class__ is not dict and data.__class__ is not FrozenDict:
        data = _snapshot(data, path)
    size = 2
    changed: dict[str, object] | None = None
    for key, value in data.items():
        if type(key) is not str:
            _refuse(
                f"event data at {path} has a key {key!r} of type {type(key).__name__}; "
                "keys must be str"
            )
        _check_text(key, path)
        kind = type(value)
        if kind is str:
            _check_text(value, f"{path}.{key}")
            size += 6 * len(value) + 6 * len(key) + 6
        elif kind is bool or value is None or (kind is int and _INT_MIN <= value <= _INT_MAX):
            size += 6 * len(key) + 26
        else:
            # Each value is walked once and its copy kept: a second walk could meet a
            # different value (a list subclass whose __iter__ changes its answer).
            frozen_value, value_size = _freeze_value(value, f"{path}.{key}")
            if changed is None:
                changed = {}
            changed[key] = frozen_value
            size += 6 * len(key) + value_size + 4
    if changed is None:
        return (_frozen_copy(data) if data else _EMPTY), size
    frozen = _frozen_copy(data)
    _dict_update(frozen, changed)  # same keys: their order stays
    return frozen, size


def exact_size(data: Mapping[str, Any]) -> int:
    """Bytes of ``data`` as compact UTF-8 JSON (data already validated)."""
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


def freeze_data(data: Mapping[str, Any] | None, max_bytes: int) -> tuple[FrozenDict, int]:
    """Validate and copy event data; return it with its encoded size (or an upper bound).

    The returned size is exact whenever the cheap upper bound comes near ``max_bytes``,
    so the limit is enforced exactly while small events never pay for encoding.
    """
    if data is None:
        return _EMPTY, 2
    # The exact-type test first: isinstance against the Mapping ABC is slow.
    if data.__class__ is not dict and not isinstance(data, Mapping):
        _refuse(f"event data must be a mapping (a dict), not {type(data).__name__}")
    try:
        frozen, size = _freeze_mapping(data, "data")
    except RecursionError:
        # A structure that contains itself, or one nested deeper than the interpreter
        # can walk: refused like any other bad data (and counted), not a crash.
        _refuse("event data is nested too deeply (or contains itself)")
    if size > max_bytes:
        try:
            size = exact_size(frozen)
        except RecursionError:
            _refuse("event data is nested too deeply to write as JSON")
        if size > max_bytes:
            _refuse(f"event data is {size} bytes as JSON, over the limit of {max_bytes} bytes")
    return frozen, size
