"""Events: creation, lineage, validation of data, immutability."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from datetime import UTC
from enum import Enum

import pytest

from eventsched import Event, EventType, InvalidEventError
from eventsched._events import HandlingSlot, _handling


class Shop(Enum):
    ORDER_PLACED = "order_placed"


def test_create_as_in_the_original_demo() -> None:
    """Event.create(type, data=..., correlation_id=...) keeps what it was given."""
    event = Event.create(
        EventType.JOB_STARTED, data={"message": "Hello World"}, correlation_id="demo-123"
    )
    assert event.type is EventType.JOB_STARTED
    assert event.data == {"message": "Hello World"}
    assert event.correlation_id == "demo-123"
    assert event.causation_id is None
    assert event.timestamp.tzinfo is UTC


def test_a_new_chain_is_correlated_by_its_own_id() -> None:
    """Without a correlation id and outside any handler, the event starts its own chain."""
    event = Event.create("something")
    assert event.correlation_id == event.id
    assert event.data == {}


def test_ids_are_unique() -> None:
    """Ids never repeat within a process."""
    ids = {Event.create("x").id for _ in range(10_000)}
    assert len(ids) == 10_000


def test_events_created_while_handling_inherit_the_lineage() -> None:
    """Inside a handler (current event set), new events inherit correlation and cause."""
    parent = Event.create("parent", correlation_id="corr-1")
    token = _handling.set(HandlingSlot(parent))
    try:
        child = Event.create("child")
        explicit = Event.create("child", correlation_id="other")
    finally:
        _handling.reset(token)
    assert child.correlation_id == "corr-1"
    assert child.causation_id == parent.id
    assert explicit.correlation_id == "other"
    assert explicit.causation_id == parent.id


def test_user_types_need_no_change_to_our_enum() -> None:
    """Plain strings and a user's own Enum are valid types; StrEnum members equal their value."""
    assert Event.create(Shop.ORDER_PLACED).type is Shop.ORDER_PLACED
    assert Event.create("order_placed").type == "order_placed"
    assert EventType.JOB_FAILED == "job_failed"


def test_data_is_copied_and_read_only() -> None:
    """Changing the caller's dict later does not change the event, nor can the event's data."""
    data = {"items": [1, 2], "nested": {"a": 1}}
    event = Event.create("x", data)
    data["items"].append(3)
    data["new"] = True
    assert event.data == {"items": (1, 2), "nested": {"a": 1}}
    with pytest.raises(TypeError):
        event.data["new"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        event.data["nested"]["a"] = 2
    with pytest.raises(AttributeError):
        event.id = "changed"  # type: ignore[misc]


def test_data_stays_json_serialisable() -> None:
    """Frozen data still serialises with json.dumps like a plain dict."""
    event = Event.create("x", OrderedDict([("a", [1, {"b": None}]), ("c", 1.5)]))
    assert json.loads(json.dumps(event.data)) == {"a": [1, {"b": None}], "c": 1.5}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([1, 2], "must be a mapping"),
        ("text", "must be a mapping"),
        ({"when": object()}, "data.when is of type object"),
        ({"bad": {1: "x"}}, "has a key 1 of type int"),
        ({"x": math.nan}, "JSON cannot represent"),
        ({"x": [1, {2, 3}]}, "data.x[1] is of type set"),
    ],
)
def test_bad_data_is_refused_with_a_clear_error(data: object, fragment: str) -> None:
    """Data that is not a JSON-compatible mapping raises InvalidEventError naming the spot."""
    with pytest.raises(InvalidEventError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        Event.create("x", data)  # type: ignore[arg-type]


def test_size_limit_is_exact_in_bytes_of_compact_json() -> None:
    """The limit applies to the compact UTF-8 JSON size: at the limit accepted, one over refused."""
    payload = {"s": "é" * 10}
    exact = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    assert Event.create("x", payload, max_bytes=exact).data_size == exact
    with pytest.raises(InvalidEventError, match=f"{exact} bytes as JSON, over the limit of"):
        Event.create("x", payload, max_bytes=exact - 1)


def test_bad_type_is_refused() -> None:
    """An event type must be a string or an Enum member."""
    with pytest.raises(InvalidEventError, match="event type must be"):
        Event.create(42)  # type: ignore[arg-type]


def test_events_compare_by_value_but_never_equal_a_tuple() -> None:
    """Two copies of one event are equal and hash alike; a tuple with the same fields is not."""
    event = Event.create("x", {"a": 1})
    copy = event._replace()
    assert copy == event
    assert hash(copy) == hash(event)
    assert event != tuple(event)
