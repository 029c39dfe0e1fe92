"""Events: small frozen values with an id, a type, JSON-compatible data and a lineage."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from ._eventchecks import (
    _SAFE_TYPE_CLASSES,
    MAX_ID_LENGTH,
    _admit_id,
    _admit_type,
)
from ._eventdata import (
    _EMPTY,
    _INT_MAX,
    _INT_MIN,
    _MAX_FLOAT_CHARS,
    _dict_new,
    _dict_update,
    _report_invalid,
    freeze_data,
)
from ._eventdata import FrozenDict as FrozenDict
from ._eventdata import _invalid_hook as _invalid_hook
from ._eventtypes import EventType as EventType
from ._eventtypes import EventTypeLike as EventTypeLike
from ._exceptions import InvalidEventError

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


class _EventFields:
    """An event's storage, writable: :func:`make_event` fills one, then makes it an Event.

    Six slots, one pointer each, because memory per buffered event is one of issue 18's
    targets (every slot is 8 B on each event in the queue):

    * ``_id`` is left unset by make_event: the id is numbered and formatted when first
      read (:func:`_assign_id`), so an event whose id nobody reads holds no serial
      number at all (an int was 28 B on every buffered event).
    * ``_lineage`` holds both lineage ids in one slot: None for an event that starts
      its own chain (correlation id = its own id, no cause); a ``str`` for the child of
      such an event (correlation id = cause = that parent's id: the one shared string,
      no copy); otherwise the tuple ``(correlation_id, causation_id)``, either of which
      may be None (as for a root).
    """

    __slots__ = (
        "_id",
        "_lineage",
        "created_at",
        "data",
        "data_size",
        "type",
    )

    type: EventTypeLike
    data: FrozenDict
    _id: Any
    _lineage: Any
    created_at: float
    data_size: int


class Event(_EventFields):
    """Something that happened: a frozen value that handlers receive.

    Build one with :meth:`Event.create`; the constructor is for tests and tools that
    need exact ids: ``Event(type, data, id, correlation_id, causation_id=None,
    created_at=0.0, data_size=0)``.

    Why a slotted class (it was a ``NamedTuple`` until issue 18): building one is the
    largest single cost of an event's trip, and a slotted object filled field by field
    is cheaper than a tuple, reads its fields faster (a slot against a tuple getter),
    and lets the id be made only when read (most events' ids never are). An event
    is immutable as the tuple was: assigning or deleting a field raises
    ``AttributeError``. It is no longer a tuple (no indexing or unpacking; use the
    fields); ``_replace``, ``_asdict`` and ``_fields`` remain, equality and hashing are
    by value, and an event never equals another type's value.
    """

    __slots__ = ()

    _fields = (
        "type",
        "data",
        "id",
        "correlation_id",
        "causation_id",
        "created_at",
        "data_size",
    )
    # Spelled out, not ``_fields``: type checkers check match statements only against
    # a tuple of string literals.
    __match_args__ = (
        "type",
        "data",
        "id",
        "correlation_id",
        "causation_id",
        "created_at",
        "data_size",
    )

    def __new__(
        cls,
        type: EventTypeLike,
        data: FrozenDict,
        id: str,
        correlation_id: str,
        causation_id: str | None = None,
        created_at: float = 0.0,
        data_size: int = 0,
    ) -> Event:
        # Not the hot path (make_event builds events): fields as given, checked at emit.
        self = object.__new__(cls)
        for name, value in (
            ("type", type),
            ("data", data),
            ("_id", id),
            ("_lineage", (correlation_id, causation_id)),
            ("created_at", created_at),
            ("data_size", data_size),
        ):
            object.__setattr__(self, name, value)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"events are immutable: cannot set {name!r} (use _replace)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"events are immutable: cannot delete {name!r}")

    @property
    def id(self) -> str:
        """Unique id of this event: a per-process random prefix and a serial number."""
        try:
            return self._id  # type: ignore[no-any-return]
        except AttributeError:  # not read before: numbered now (see _EventFields)
            return _assign_id(self)

    @property
    def correlation_id(self) -> str:
        """Shared by every event of one chain of work (a job run and what it causes)."""
        lineage = self._lineage
        if lineage is None:
            return self.id
        if lineage.__class__ is tuple:
            lineage = lineage[0]
            if lineage is None:
                return self.id
        return lineage  # type: ignore[no-any-return]

    @property
    def causation_id(self) -> str | None:
        """Id of the event whose handler created this one, if any."""
        lineage = self._lineage
        if lineage.__class__ is tuple:
            return lineage[1]  # type: ignore[no-any-return]
        return lineage  # type: ignore[no-any-return]

    def _astuple(self) -> tuple[object, ...]:
        return (
            self.type,
            self.data,
            self.id,
            self.correlation_id,
            self.causation_id,
            self.created_at,
            self.data_size,
        )

    def _asdict(self) -> dict[str, Any]:
        """The fields as a dict, in :attr:`_fields` order."""
        return dict(zip(self._fields, self._astuple(), strict=True))

    def _replace(self, **changes: Any) -> Event:
        """A copy with some fields changed (checked at emit like any ready-made event)."""
        fields = self._asdict()
        unknown = changes.keys() - fields.keys()
        if unknown:
            raise ValueError(f"Got unexpected field names: {sorted(unknown)!r}")
        fields.update(changes)
        return type(self)(**fields)

    def __reduce__(self) -> tuple[type[Event], tuple[object, ...]]:
        return (type(self), self._astuple())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self._asdict().items())
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._astuple() == other._astuple()

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


# A float item's bound: its repr (at most _MAX_FLOAT_CHARS) plus the key's quotes, colon
# and comma, as _freeze_mapping counts it.
_FLOAT_ITEM = _MAX_FLOAT_CHARS + 4
_FLOAT_MAX = sys.float_info.max
_FLOAT_MIN = -_FLOAT_MAX

# make_event fills a bare _EventFields (plain slot stores, no __setattr__ of Event's in
# the way) and then turns it into an Event: same slots, so the class can be swapped.
_set_id: Callable[[object, object], None] = _EventFields.__dict__["_id"].__set__
_id_lock = threading.Lock()


def _assign_id(event: Event) -> str:
    """Number and format an event's id on its first read; the same string from then on.

    Under a lock: two threads reading a new event's id at once must not number it twice
    (the second would change an id the first has already handed out).
    """
    with _id_lock:
        try:
            return event._id  # type: ignore[no-any-return]  # another thread was first
        except AttributeError:
            value = _ID_PREFIX + str(_next_serial())
            _set_id(event, value)
            return value


def _lineage_of(correlation_id: str | None, causation_id: str | None) -> object:
    # The one-slot form of two lineage ids (see _EventFields).
    if correlation_id is None and causation_id is None:
        return None
    if correlation_id is causation_id and correlation_id.__class__ is str:
        return correlation_id
    return (correlation_id, causation_id)


_time = time.time


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
    lineage: object = None
    if correlation_id is None and causation_id is None:  # the common case: inherited
        slot = _handling.get()
        if slot is not None:
            parent = slot.event
            if parent is not None:
                # The parent's id string itself, shared: numbered now if still unread.
                # A parent that started its chain gives one id for both.
                lineage = (
                    parent.id if parent._lineage is None else (parent.correlation_id, parent.id)
                )
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
        lineage = _lineage_of(correlation_id, causation_id)
    event = _EventFields()  # a class call: cheaper than object.__new__(_EventFields)
    event.type = event_type
    event.data = frozen
    # _id stays unset: the id is numbered and formatted when first read (Event.id).
    event._lineage = lineage
    event.created_at = _time()
    event.data_size = size
    event.__class__ = Event
    made: Event = event  # type: ignore[assignment]
    if cls is not Event:  # a subclass may add fields: its own constructor builds it
        return cls(*made._astuple())  # type: ignore[arg-type]
    return made
