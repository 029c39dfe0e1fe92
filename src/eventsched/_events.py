"""Events: small frozen values with an id, a type, JSON-compatible data and a lineage."""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any, NamedTuple, TypeAlias

from ._eventdata import (
    _EMPTY,
    _INT_MAX,
    _INT_MIN,
    _MAX_FLOAT_CHARS,
    _dict_new,
    _dict_update,
    _refuse,
    _report_invalid,
    exact_size,
    freeze_data,
)
from ._eventdata import FrozenDict as FrozenDict
from ._eventdata import _invalid_hook as _invalid_hook
from ._exceptions import InvalidEventError
from ._invoke import describe_error

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "MAX_ID_LENGTH",
    "Event",
    "EventType",
    "EventTypeLike",
    "FrozenDict",
    "current_event",
]

#: Default limit on the size of an event's data, in bytes of compact UTF-8 JSON.
DEFAULT_MAX_EVENT_BYTES = 64 * 1024

#: Longest ``correlation_id`` or ``causation_id`` accepted, in characters. Ids are
#: repeated in every log line of their chain, so a long one costs on every record;
#: 256 leaves room for a UUID, a trace id or a URL-like key with a prefix.
MAX_ID_LENGTH = 256


class EventType(StrEnum):
    """The event types eventsched itself emits or that the original demo knew.

    Because this is a ``StrEnum``, a member equals its value: handlers subscribed to
    ``"job_failed"`` receive ``EventType.JOB_FAILED`` events. Your own types need no
    change here: use your own ``Enum`` or plain strings.
    """

    JOB_STARTED = "job_started"
    JOB_COMPLETED = "job_completed"
    JOB_FAILED = "job_failed"
    JOB_MISSED = "job_missed"
    SHUTDOWN_REQUESTED = "shutdown_requested"
    EVENTS_DROPPED = "events_dropped"


EventTypeLike: TypeAlias = str | Enum


class HandlingSlot:
    """The event a handler task (or a job run) is working on, shared with its context.

    Setting and resetting a ContextVar per event would be a large share of a trivial
    handler's whole trip. So each handler task sets ``_handling`` once, to its own
    slot, and per event only assigns ``slot.event``. Code run by the handler (its
    awaits, the tasks it starts and waits for, its worker thread) shares the task's
    context and so reads the right event. The one thing that reads a later event is
    a task the handler starts in a task group that outlives the handler: pass
    ``correlation_id`` explicitly there. Events created while a slot holds an event
    inherit its correlation id and name it as their cause.
    """

    __slots__ = ("event",)

    def __init__(self, event: Event | None = None) -> None:
        self.event = event


_handling: ContextVar[HandlingSlot | None] = ContextVar("eventsched_handling", default=None)

# Ids are a per-process random prefix plus a counter: unique enough across processes
# and far cheaper than uuid4 on the hot path.
_ID_PREFIX = os.urandom(6).hex() + "-"
_next_serial = itertools.count(1).__next__


def current_event() -> Event | None:
    """Return the event being handled in this task or thread, if any.

    In a handler, that is the event it handles; in a job run, its ``JOB_STARTED``.
    """
    slot = _handling.get()
    return None if slot is None else slot.event


class Event(NamedTuple):
    """Something that happened: a frozen value that handlers receive.

    Build one with :meth:`Event.create`; the constructor is for tests and tools that
    need exact ids.

    Why a ``NamedTuple`` and not a frozen dataclass: it is just as immutable and
    slotted, and building one is several times cheaper than a frozen slotted dataclass
    of seven fields (``object.__setattr__`` per field). Events are built on the hot
    path, where that difference is a large share of the per-event budget. Equality
    and hashing are by value but never equal a plain tuple.
    """

    type: EventTypeLike
    """What happened: an :class:`EventType`, your own ``Enum`` member, or a string."""
    data: FrozenDict
    """JSON-compatible, read-only data (copied at creation)."""
    id: str
    """Unique id of this event."""
    correlation_id: str
    """Shared by every event of one chain of work (a job run and what it causes)."""
    causation_id: str | None = None
    """Id of the event whose handler created this one, if any."""
    created_at: float = 0.0
    """Creation time, seconds since the epoch (see :attr:`timestamp`)."""
    data_size: int = 0
    """Upper bound of ``data``'s size in bytes of compact JSON (exact near the limit)."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def timestamp(self) -> datetime:
        """Creation time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.created_at, UTC)

    @classmethod
    def create(
        cls,
        type: EventTypeLike,
        data: Mapping[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> Event:
        """Create an event, validating and copying ``data``.

        Inside a handler, the new event inherits the handled event's correlation id
        and names it as its cause, unless told otherwise. Outside any chain, a new
        event starts its own: its correlation id is its own id.

        :raises InvalidEventError: ``data`` is not a mapping with str keys, holds a
            value JSON cannot represent, or is larger than ``max_bytes``
        """
        try:
            return make_event(cls, type, data, max_bytes, correlation_id, causation_id)
        except InvalidEventError as error:
            _report_invalid(error)
            raise


def _admit_type(event_type: object) -> EventTypeLike:
    """An event type other than a plain ``str``, made safe for the workers' routing.

    The workers look every event's type up in a dict: a ``__hash__`` or ``__eq__`` of
    the user's running there would crash a worker, not the emit that brought it. So a
    ``str`` subclass (not an Enum) becomes the plain ``str`` of its value, read through
    the base class so none of its methods run. An Enum member is kept (handlers may
    subscribe to the member itself): if its class hashes and compares with the
    standard library's methods, the class is remembered as safe; otherwise hashing and
    comparing it are tried here, in the emitter.
    """
    kind = type(event_type)
    if isinstance(event_type, Enum):
        if kind.__hash__ in _STANDARD_HASH and kind.__eq__ in _STANDARD_EQ:
            if len(_SAFE_TYPE_CLASSES) < _SAFE_TYPE_CLASSES_MAX:
                _SAFE_TYPE_CLASSES.add(kind)
            return event_type
        try:
            hash(event_type)
            event_type == event_type  # noqa: B015 (the user's __eq__ is what is tried)
        except Exception as error:  # the user's code: refused here, not in a worker
            _refuse(
                f"event type {kind.__qualname__} cannot be hashed or compared: "
                f"{describe_error(error)}"
            )
        return event_type
    if isinstance(event_type, str):
        return str.__str__(event_type)
    raise InvalidEventError(
        f"event type must be a str or an Enum member, not {_kind_of(event_type)}"
    )


# Enum classes whose members need no check at admission (see _admit_type); bounded,
# since classes can be made at run time.
_SAFE_TYPE_CLASSES: set[type] = {str, EventType}
_SAFE_TYPE_CLASSES_MAX = 1024
_STANDARD_HASH = (Enum.__hash__, str.__hash__, int.__hash__, object.__hash__)
_STANDARD_EQ = (object.__eq__, str.__eq__, int.__eq__)


def _admit_id(value: object, field: str) -> str:
    """A ``correlation_id`` or ``causation_id`` checked: printable text, not too long.

    Ids go into every log line and JSON record of their chain, so they must be text
    without control characters (a newline would forge a log line) or lone surrogates
    (no UTF-8 form), and bounded (:data:`MAX_ID_LENGTH`). A ``str`` subclass is stored
    as the plain ``str`` of its value, read through the base class.
    """
    if not isinstance(value, str):
        _refuse(f"{field} must be a str, not {_kind_of(value)}")
    text = str.__str__(value)
    if len(text) > MAX_ID_LENGTH:
        _refuse(f"{field} is {len(text)} characters long, over the limit of {MAX_ID_LENGTH}")
    if not text.isprintable():
        _refuse(f"{field} {text!r} holds a control character or a lone surrogate")
    return text


def _kind_of(value: object) -> str:
    # The type's name only: repr() of the value would run the user's code, or echo
    # something huge into the message.
    return f"a value of type {type(value).__qualname__}"


def admit_event(event: Event, max_bytes: int) -> Event:
    """Check a ready-made event before a scheduler accepts it; return it, or a copy.

    ``make_event`` measured the data of events it built (an upper bound, exact near its
    own limit): those pass as they are unless they come near ``max_bytes``. Data it did
    not build (the constructor, ``_replace``) is validated, copied and measured here.

    :raises InvalidEventError: the type or data is not acceptable, or over ``max_bytes``
    """
    if (
        event.type.__class__ not in _SAFE_TYPE_CLASSES
        or not _is_plain_id(event.correlation_id)
        or (event.causation_id is not None and not _is_plain_id(event.causation_id))
    ):
        event = event._replace(
            type=_admit_type(event.type),
            correlation_id=_admit_id(event.correlation_id, "correlation_id"),
            causation_id=(
                None
                if event.causation_id is None
                else _admit_id(event.causation_id, "causation_id")
            ),
        )
    if event.data.__class__ is FrozenDict and event.data_size >= 2:
        if event.data_size > max_bytes:
            size = exact_size(event.data)
            if size > max_bytes:
                _refuse(
                    f"event {event.id} has {size} bytes of data as JSON, over the limit of "
                    f"{max_bytes} bytes (max_event_bytes)"
                )
        return event
    frozen, size = freeze_data(event.data, max_bytes)
    return event._replace(data=frozen, data_size=size)


def admit(
    event: Event | EventTypeLike,
    data: Mapping[str, Any] | None,
    correlation_id: str | None,
    causation_id: str | None,
    max_bytes: int,
) -> Event:
    """The one admission of an event into a scheduler: what every emit path calls.

    Given a ready-made :class:`Event`, check it against ``max_bytes`` (see
    :func:`admit_event`); given a type, build the event from ``data`` and the lineage
    (see :func:`make_event`). The caller counts a refusal in its ledger.

    :raises InvalidEventError: the type or data is not acceptable
    :raises TypeError: an Event came with data or lineage besides
    """
    if event.__class__ is not Event:
        return make_event(Event, event, data, max_bytes, correlation_id, causation_id)  # type: ignore[arg-type]
    if data is not None or correlation_id is not None or causation_id is not None:
        raise TypeError("pass either an Event or a type with data, not both")
    if (
        event.data.__class__ is FrozenDict
        and 2 <= event.data_size <= max_bytes
        # A str subclass as type would run its __hash__ in the worker's routing.
        and (event.type.__class__ is str or isinstance(event.type, Enum))
        and _is_plain_id(event.correlation_id)
        and (event.causation_id is None or _is_plain_id(event.causation_id))
    ):
        return event
    # Data this module did not build (the constructor, _replace), lineage set with
    # _replace, or near the limit.
    return admit_event(event, max_bytes)


# A float item's bound: its repr (at most _MAX_FLOAT_CHARS) plus the key's quotes, colon
# and comma, as _freeze_mapping counts it.
_FLOAT_ITEM = _MAX_FLOAT_CHARS + 4
_FLOAT_MAX = sys.float_info.max
_FLOAT_MIN = -_FLOAT_MAX

# tuple.__new__ directly skips NamedTuple's Python-level __new__ (half the cost).
_new_event = tuple.__new__
_time = time.time


def _is_plain_id(value: object) -> bool:
    """Whether an id needs no more checking: a plain, short, printable str."""
    return value.__class__ is str and len(value) <= MAX_ID_LENGTH and value.isprintable()


def make_event(
    cls: type[Event],
    event_type: EventTypeLike,
    data: Mapping[str, Any] | None,
    max_bytes: int,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Event:
    """The body of :meth:`Event.create`, also called directly by ``emit(type, data)``.

    A module function with positional arguments, because calling a classmethod costs
    several times a plain function call, and this runs once per event. The common
    data, a flat dict of short scalars, is checked inline here.
    """
    if event_type.__class__ is not str and event_type.__class__ not in _SAFE_TYPE_CLASSES:
        event_type = _admit_type(event_type)
    frozen: FrozenDict | None = None
    if data is None:
        frozen, size = _EMPTY, 2
    elif data.__class__ is dict:
        size = 2
        for key, value in data.items():
            kind = value.__class__
            if key.__class__ is not str or not key.isascii():
                break
            # Most frequent kinds first; each test is an identity check or one compare.
            if kind is str:
                if not value.isascii():
                    break
                size += 6 * (len(key) + len(value)) + 6
            elif kind is int:
                if not _INT_MIN <= value <= _INT_MAX:
                    break
                size += 6 * len(key) + 26
            elif kind is float:
                # False for nan and both infinities (JSON has none of them).
                if not _FLOAT_MIN <= value <= _FLOAT_MAX:
                    break
                size += 6 * len(key) + _FLOAT_ITEM
            elif kind is bool or value is None:
                size += 6 * len(key) + 26
            else:
                break
        else:
            if size <= max_bytes:
                if data:  # _frozen_copy inlined: saves a call per event
                    frozen = _dict_new(FrozenDict)
                    _dict_update(frozen, data)
                else:
                    frozen = _EMPTY
    if frozen is None:  # nested data, other types, non-ASCII text, near the limit: the full walk
        frozen, size = freeze_data(data, max_bytes)
    event_id = _ID_PREFIX + str(_next_serial())
    if correlation_id is None and causation_id is None:  # the common case: inherited
        slot = _handling.get()
        if slot is not None:
            parent = slot.event
            if parent is not None:
                correlation_id = parent.correlation_id
                causation_id = parent.id
    else:  # explicit ids: checked inline, a call would cost more than the checks
        if correlation_id is not None and (
            correlation_id.__class__ is not str
            or len(correlation_id) > MAX_ID_LENGTH
            or not correlation_id.isprintable()
        ):
            correlation_id = _admit_id(correlation_id, "correlation_id")
        if causation_id is not None and (
            causation_id.__class__ is not str
            or len(causation_id) > MAX_ID_LENGTH
            or not causation_id.isprintable()
        ):
            causation_id = _admit_id(causation_id, "causation_id")
        if correlation_id is None or causation_id is None:
            slot = _handling.get()
            if slot is not None:
                parent = slot.event
                if parent is not None:
                    if correlation_id is None:
                        correlation_id = parent.correlation_id
                    if causation_id is None:
                        causation_id = parent.id
    return _new_event(
        cls,
        (
            event_type,
            frozen,
            event_id,
            event_id if correlation_id is None else correlation_id,
            causation_id,
            _time(),
            size,
        ),
    )
