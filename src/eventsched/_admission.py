"""Admission: the one check every event passes before a scheduler's queue takes it.

Given a type and data, :func:`admit` builds the event (:func:`make_event`, which checks
as it builds); given a ready-made :class:`Event` (the constructor, ``_replace``), it
checks the type, the ids and the data against the scheduler's ``max_event_bytes``,
copying what make_event did not build.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from ._eventchecks import _SAFE_TYPE_CLASSES, _admit_id, _admit_type, _is_plain_id
from ._eventdata import FrozenDict, _refuse, exact_size, freeze_data
from ._events import Event, EventTypeLike, make_event

__all__ = ["admit", "admit_event"]


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
