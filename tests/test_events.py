"""Events: creation, lineage, validation of data, immutability."""

from __future__ import annotations

import json
import math
import pickle
import threading
from collections import OrderedDict
from datetime import UTC
from enum import Enum

import anyio
import pytest

from eventsched import Event, EventType, FrozenDict, InvalidEventError, Statistics, _events
from eventsched._events import HandlingSlot, _handling
from eventsched.testing import assert_accounted


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


def test_a_chain_built_before_any_id_is_read_reads_back_the_right_ids() -> None:
    """Ids are formatted only when read, and children take their parent's unformatted
    ids: read afterwards, in any order, every id of a three-event chain is right."""
    root = Event.create("root")
    token = _handling.set(HandlingSlot(root))
    try:
        child = Event.create("child")
        explicit_cause = Event.create("child", causation_id="cause-1")
    finally:
        _handling.reset(token)
    token = _handling.set(HandlingSlot(child))
    try:
        grandchild = Event.create("grandchild")
    finally:
        _handling.reset(token)
    assert grandchild.correlation_id == child.correlation_id == root.id == root.correlation_id
    assert grandchild.causation_id == child.id != root.id
    assert child.causation_id == root.id
    assert explicit_cause.correlation_id == root.id
    assert explicit_cause.causation_id == "cause-1"
    assert root.causation_id is None
    assert len({root.id, child.id, grandchild.id, explicit_cause.id}) == 4


def test_an_int_given_as_an_id_reads_back_as_given() -> None:
    """The constructor keeps what it is given (emit checks it): an int stays that int,
    never mistaken for one of the serial numbers events are numbered with."""
    event = Event("t", FrozenDict(), 7, 8, 9)  # type: ignore[arg-type]
    assert (event.id, event.correlation_id, event.causation_id) == (7, 8, 9)


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


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_float_among_flat_scalars_is_refused(value: float) -> None:
    """Flat data with floats takes the inline checks of make_event: nan and the
    infinities are refused there too, whatever the other values."""
    with pytest.raises(InvalidEventError, match="JSON cannot represent"):
        Event.create("x", {"a": 1, "s": "t", "f": value, "b": True})


@pytest.mark.parametrize(
    "value", [0.1, -2.2250738585072014e-308, 1.7976931348623157e308, 5e-324, -0.0, 1e16]
)
def test_flat_floats_are_sized_within_the_bound_and_exactly_near_the_limit(value: float) -> None:
    """A float's bound covers its longest repr; at the exact size accepted, one under refused."""
    payload = {"f": value, "n": 7, "s": "abc", "z": None}
    exact = len(json.dumps(payload, separators=(",", ":")).encode())
    assert Event.create("x", payload).data_size >= exact
    assert Event.create("x", payload, max_bytes=exact).data_size == exact
    with pytest.raises(InvalidEventError, match="over the limit"):
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
    assert event != tuple(event._asdict().values())
    assert event != event._replace(data_size=event.data_size + 1)


def test_every_field_of_an_event_is_read_only() -> None:
    """Assigning or deleting any field raises, the lazily formatted id included."""
    event = Event.create("x", {"a": 1})
    for name in (*Event._fields, "_id", "_correlation_id"):
        with pytest.raises(AttributeError):
            setattr(event, name, "changed")
        with pytest.raises(AttributeError):
            delattr(event, name)
    assert event.id == event.correlation_id
    assert event.type == "x"


def test_an_id_is_formatted_once_and_stays_the_same_object() -> None:
    """The id is made on first read from the serial number, then kept: the same string
    every time, and unique per event (random process prefix, serial number)."""
    first, second = Event.create("x"), Event.create("x")
    assert first.id is first.id
    assert first.id != second.id
    assert first.id.rsplit("-", 1)[0] == second.id.rsplit("-", 1)[0]
    assert int(second.id.rsplit("-", 1)[1]) > int(first.id.rsplit("-", 1)[1])


def test_an_id_first_read_in_two_threads_at_once_is_numbered_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread that finds the id unread and then waits for the numbering lock returns
    the id another thread gave meanwhile: it never numbers the event a second time."""
    event = Event.create("x")
    lock, arrived = threading.Lock(), threading.Event()

    class Gate:  # the numbering lock, telling the test when a thread is at it
        def __enter__(self) -> None:
            arrived.set()
            lock.acquire()

        def __exit__(self, *exc_info: object) -> None:
            lock.release()

    monkeypatch.setattr(_events, "_id_lock", Gate())
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.append(event.id))
    with lock:  # this thread is the first reader, holding the lock
        reader.start()
        assert arrived.wait(10)
        _events._set_id(event, "given-first")
    reader.join(10)
    assert seen == ["given-first"]
    assert event.id == "given-first"


def test_a_child_shares_its_parents_id_and_stays_small() -> None:
    """A child of a root event keeps the parent's id string itself (one object for both
    lineage ids); the lineage of deeper events is right read in any order."""
    root = Event.create("root")
    token = _handling.set(HandlingSlot(root))
    try:
        child = Event.create("child")
    finally:
        _handling.reset(token)
    assert child.correlation_id is root.id
    assert child.causation_id is root.id


# -- data the JSON encoder could not write, found by an audit -------------------------------


def test_ints_are_sized_by_their_digits() -> None:
    """A big int counts its digits against the limit; one without a decimal form is refused."""
    assert Event.create("n", {"n": 2**63 - 1}).data["n"] == 2**63 - 1
    digits_200 = 10**199
    assert Event.create("n", {"n": digits_200}, max_bytes=300).data["n"] == digits_200
    with pytest.raises(InvalidEventError, match="over the limit of 100 bytes"):
        Event.create("n", {"n": digits_200}, max_bytes=100)
    with pytest.raises(InvalidEventError, match="too large to write as JSON"):
        Event.create("n", {"n": 10**5000})
    with pytest.raises(InvalidEventError, match="too large to write as JSON"):
        Event.create("n", {"n": [10**5000] * 14})


def test_self_containing_or_too_deep_data_is_refused() -> None:
    """Recursion in the data is an InvalidEventError, not a RecursionError."""
    loop: list[object] = []
    loop.append(loop)
    looped: dict[str, object] = {}
    looped["self"] = looped
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    for data in ({"a": loop}, looped, {"a": deep}):
        with pytest.raises(InvalidEventError, match="nested too deeply"):
            Event.create("n", data)


@pytest.mark.parametrize("data", [{"a": "\ud800"}, {"\udfff": 1}, {"a": ["ok", "x\ud800" * 20000]}])
def test_text_without_a_utf8_form_is_refused(data: dict[str, object]) -> None:
    """A lone surrogate is refused at any length, in values and in keys."""
    with pytest.raises(InvalidEventError, match="not valid Unicode"):
        Event.create("n", data)


def test_non_ascii_text_is_accepted_and_sized_exactly() -> None:
    """Valid non-ASCII text passes, and the limit stays exact for it."""
    text = "é" * 10  # 20 bytes of UTF-8
    exact = len(json.dumps({"t": text}, ensure_ascii=False, separators=(",", ":")).encode())
    assert Event.create("n", {"t": text}, max_bytes=exact).data["t"] == text
    with pytest.raises(InvalidEventError):
        Event.create("n", {"t": text}, max_bytes=exact - 1)


def test_enum_members_in_data_are_stored_as_their_plain_values() -> None:
    """StrEnum and IntEnum members are accepted as the str or int JSON writes for them."""
    import enum

    class Status(enum.StrEnum):
        OK = "ok"

    class Level(enum.IntEnum):
        HIGH = 3

    event = Event.create("n", {"status": Status.OK, "levels": [Level.HIGH]})
    assert event.data == {"status": "ok", "levels": (3,)}
    assert type(event.data["status"]) is str
    assert type(event.data["levels"][0]) is int


def test_frozen_dict_cannot_be_reinitialised_and_validates_what_it_is_built_from() -> None:
    """__init__ cannot rewrite accepted data; a FrozenDict of bad data cannot be built."""
    event = Event.create("n", {"amount": 10})
    event.data.__init__(amount=1_000_000, extra=True)  # type: ignore[misc]
    assert event.data == {"amount": 10}
    built = FrozenDict({"a": [1, {"b": 2}]})
    assert built == {"a": (1, {"b": 2})}
    assert type(built["a"][1]) is FrozenDict
    with pytest.raises(InvalidEventError):
        FrozenDict({"a": math.nan})
    assert pickle.loads(pickle.dumps(built)) == built


# -- bad input at emit (issue 15, item 9): refused, counted, the scheduler goes on ----


class _BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class _UnhashableType(str):
    __slots__ = ()

    def __hash__(self) -> int:
        raise RuntimeError("no hash for you")


class _LyingDict(dict[str, object]):
    """Shows small, valid data through items(); really holds something else."""

    def items(self):  # type: ignore[no-untyped-def,override]
        return {"ok": 1}.items()

    def keys(self):  # type: ignore[no-untyped-def,override]
        return {"ok": 1}.keys()

    def __iter__(self):  # type: ignore[no-untyped-def,override]
        return iter({"ok": 1})


_BAD_IDS: list[object] = [_BadStr(), object(), 42, "x" * 10_000_000, "two\nlines"]
_BAD_ID_NAMES = ["str-raises", "object", "int", "10MB", "newline"]


async def _run_refusals(
    emits: list[tuple[str, dict[str, object]]],
) -> tuple[list[str], Statistics]:
    """Emit each (type, kwargs) expecting a refusal, then a good event; return what ran."""
    from eventsched import EventScheduler

    scheduler = EventScheduler(max_event_bytes=1024)
    seen: list[str] = []
    for event_type in ("t", "still-running"):
        scheduler.on(event_type, lambda event: seen.append(str(event.type)))
    with anyio.fail_after(10):
        async with scheduler:
            for event_type, kwargs in emits:
                with pytest.raises(InvalidEventError):
                    await scheduler.emit(event_type, **kwargs)  # type: ignore[arg-type]
                with pytest.raises(InvalidEventError):
                    scheduler.emit_nowait(event_type, **kwargs)  # type: ignore[arg-type]
            assert await scheduler.emit("still-running")
    return seen, scheduler.statistics()


@pytest.mark.anyio
@pytest.mark.parametrize("field", ["correlation_id", "causation_id"])
async def test_a_bad_id_is_refused_at_emit_naming_the_field(field: str) -> None:
    """A non-str id, one whose __str__ raises, a 10 MB one: refused, counted, no crash."""
    seen, stats = await _run_refusals([("t", {field: bad}) for bad in _BAD_IDS])
    assert seen == ["still-running"]
    assert dict(stats.rejected) == {"invalid": 2 * len(_BAD_IDS)}
    assert_accounted(stats)


@pytest.mark.parametrize("bad", _BAD_IDS, ids=_BAD_ID_NAMES)
def test_a_bad_id_names_the_field_and_stays_short(bad: object) -> None:
    """The error names the field; it never echoes a huge value."""
    for field in ("correlation_id", "causation_id"):
        with pytest.raises(InvalidEventError, match=field) as caught:
            Event.create("t", **{field: bad})  # type: ignore[arg-type]
        assert len(str(caught.value)) < 300


def test_ids_at_the_limit_are_accepted_and_str_subclasses_become_plain_str() -> None:
    """256 characters pass; a str subclass id is stored as a plain str of its value."""
    from eventsched._events import MAX_ID_LENGTH

    class Tag(str):
        __slots__ = ()

    event = Event.create("t", correlation_id="c" * MAX_ID_LENGTH, causation_id=Tag("cause"))
    assert event.correlation_id == "c" * MAX_ID_LENGTH
    assert type(event.causation_id) is str
    assert event.causation_id == "cause"
    with pytest.raises(InvalidEventError, match="over the limit of 256"):
        Event.create("t", correlation_id="c" * (MAX_ID_LENGTH + 1))


@pytest.mark.anyio
async def test_a_str_subclass_type_is_stored_as_plain_str_and_routed() -> None:
    """A str subclass whose __hash__ raises becomes a plain str at emit: the worker routes it."""
    from eventsched import EventScheduler

    scheduler = EventScheduler()
    seen: list[tuple[type, object]] = []
    scheduler.on("order", lambda event: seen.append((type(event.type), event.type)))
    with anyio.fail_after(10):
        async with scheduler:
            assert await scheduler.emit(_UnhashableType("order"))
            assert scheduler.emit_nowait(_UnhashableType("order"))
            made = Event.create("other")._replace(type=_UnhashableType("order"))
            assert await scheduler.emit(made)
            assert await scheduler.emit("order")
    assert seen == [(str, "order")] * 4
    stats = scheduler.statistics()
    assert stats.failed == 0
    assert_accounted(stats)


def test_an_enum_type_whose_hash_raises_is_refused_at_create() -> None:
    """An Enum member is kept as is, once hashing it has worked in the emitter."""

    class Broken(Enum):
        A = "a"

        def __hash__(self) -> int:
            raise RuntimeError("no hash")

    with pytest.raises(InvalidEventError, match="cannot be hashed or compared"):
        Event.create(Broken.A)
    assert Event.create(Shop.ORDER_PLACED).type is Shop.ORDER_PLACED


@pytest.mark.anyio
async def test_a_dict_subclass_is_checked_on_what_it_really_holds() -> None:
    """items()/keys()/__iter__ that lie cannot smuggle bytes, objects or 5 MB past the limit."""
    smuggled: list[dict[str, object]] = [{"blob": b"bytes"}, {"thing": object()}]
    smuggled.append({"big": "x" * 5_000_000})
    emits: list[tuple[str, dict[str, object]]] = []
    for content in smuggled:
        lying = _LyingDict(content)
        emits.append(("t", {"data": lying}))
        emits.append(("t", {"data": {"nested": lying}}))
    seen, stats = await _run_refusals(emits)
    assert seen == ["still-running"]
    assert dict(stats.rejected) == {"invalid": 2 * len(emits)}
    assert_accounted(stats)


def test_a_dict_subclass_is_stored_as_what_it_holds() -> None:
    """What is checked is what is stored: the real contents, not what items() shows."""
    event = Event.create("t", _LyingDict({"real": 2}))
    assert dict.items(event.data) == {"real": 2}.items()
    assert type(event.data) is FrozenDict
    with pytest.raises(InvalidEventError, match="over the limit of 1024"):
        Event.create("t", _LyingDict({"big": "x" * 5000}), max_bytes=1024)


def test_a_mapping_whose_items_raise_is_refused() -> None:
    """A mapping that cannot be read is bad data (InvalidEventError), not a TypeError."""

    class Unreadable(dict[str, object]):
        pass

    class Broken(OrderedDict[str, object]):
        def items(self):  # type: ignore[no-untyped-def,override]
            raise RuntimeError("unreadable")

    from collections.abc import Mapping

    class Odd(Mapping[str, object]):
        def __getitem__(self, key: str) -> object:
            raise KeyError(key)

        def __iter__(self):  # type: ignore[no-untyped-def,override]
            raise RuntimeError("unreadable")

        def __len__(self) -> int:
            return 1

    # OrderedDict is a dict subclass: read through dict.items, so its items() never runs.
    assert Event.create("t", Broken({"a": 1})).data == {"a": 1}
    with pytest.raises(InvalidEventError, match="could not be read"):
        Event.create("t", Odd())
    assert Event.create("t", Unreadable(a=1)).data == {"a": 1}


@pytest.mark.anyio
async def test_a_ready_made_event_with_a_bad_id_is_refused_at_emit() -> None:
    """Event(...) or _replace() can carry any id: emit checks it as it checks data."""
    from eventsched import EventScheduler

    good = Event.create("t")
    bad = [
        good._replace(correlation_id=42),
        good._replace(correlation_id=_BadStr()),
        Event("t", FrozenDict(), "id-1", "x" * 1000),
        good._replace(causation_id=object(), data_size=0),
    ]
    scheduler = EventScheduler()
    with anyio.fail_after(10):
        async with scheduler:
            for event in bad:
                with pytest.raises(InvalidEventError, match="_id"):
                    await scheduler.emit(event)
                with pytest.raises(InvalidEventError, match="_id"):
                    scheduler.emit_nowait(event)
    stats = scheduler.statistics()
    assert dict(stats.rejected) == {"invalid": 2 * len(bad)}
    assert_accounted(stats)
