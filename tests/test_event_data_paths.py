"""make_event's inline checks of flat data against the full walk (freeze_data).

make_event checks flat dicts of plain scalars inline and hands everything else to
freeze_data; the inline path may only accept what the walk accepts, with a size bound
no smaller than the exact size, and the limit exact near it. These tests compare the
two over generated payloads of few and many keys, with every edge the two paths could
disagree on.
"""

from __future__ import annotations

import enum
import json
import math
import random
import re
from collections import OrderedDict
from typing import Any

import pytest

from eventsched import Event, InvalidEventError
from eventsched._eventdata import FrozenDict, exact_size, freeze_data
from eventsched._events import make_event


class _Key(str):
    pass


class _Text(str):
    pass


class _Level(enum.IntEnum):
    HIGH = 3


class _Colour(enum.StrEnum):
    RED = "red"


class _Sub(dict[str, Any]):
    pass


_KEYS: list[object] = [
    *"abcdefghijklmnop",
    "",
    "long_key_" * 5,
    "ctl\n\x00",
    "é",
    "日本",
    "😀",
    "\ud800",
    _Key("k"),
    1,
    None,
]

_VALUES: list[object] = [
    0,
    -1,
    255,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**63) - 1,
    2**64,
    10**40,
    0.0,
    -0.0,
    2.5,
    -1.5e-300,
    5e-324,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    9.3e18,
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    None,
    "",
    "hello",
    "x" * 200,
    '"quoted"\\',
    "\x01\x1f",
    "é",
    "😀",
    "\udfff",
    _Text("t"),
    _Level.HIGH,
    _Colour.RED,
    {"n": 1, "f": 0.5},
    {"bad": math.nan},
    {2: "int key"},
    [1, "two", 3.0, None],
    (True, [1.5]),
    _Sub(x=1),
    {1, 2},
    b"bytes",
    object(),
]

# Mostly plain values, so that many-key payloads often stay acceptable.
_PLAIN_VALUES = [v for v in _VALUES if v.__class__ in (int, float, str, bool) or v is None]
_PLAIN_VALUES = [v for v in _PLAIN_VALUES if not isinstance(v, float) or math.isfinite(v)]
_PLAIN_VALUES = [v for v in _PLAIN_VALUES if not isinstance(v, str) or v.isascii()]
_PLAIN_VALUES = [v for v in _PLAIN_VALUES if not isinstance(v, int) or -(2**63) <= v < 2**63]


def _shape(value: object) -> object:
    """What a copy holds, types included (== alone would equate 1 and True, list and tuple)."""
    if isinstance(value, dict):
        return (value.__class__, [(k.__class__, k, _shape(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (value.__class__, [_shape(v) for v in value])
    if isinstance(value, float):
        return (value.__class__, repr(value))  # tells -0.0 from 0.0
    return (value.__class__, value)


def _outcome(build: Any) -> tuple[str, object, int]:
    try:
        data, size = build()
    except InvalidEventError as error:
        return ("refused", str(error), 0)
    return ("accepted", _shape(data), size)


def _payload(rng: random.Random, keys: int, odd: float) -> dict[Any, Any]:
    data: dict[Any, Any] = {}
    for _ in range(keys):
        key = rng.choice(_KEYS) if rng.random() < odd else rng.choice(_KEYS[:16])
        data[key] = rng.choice(_VALUES) if rng.random() < odd else rng.choice(_PLAIN_VALUES)
    return data


def _check_same(data: Any, max_bytes: int) -> str:
    before = _shape(data) if isinstance(data, dict) else None
    inline = _outcome(lambda: _via_make_event(data, max_bytes))
    walk = _outcome(lambda: freeze_data(data, max_bytes))
    assert inline[:2] == walk[:2], (data, max_bytes)
    if isinstance(data, dict):
        assert _shape(data) == before  # the caller's dict is untouched
    if inline[0] == "accepted":
        event = make_event(Event, "x", data, max_bytes)
        assert event.data.__class__ is FrozenDict
        assert event.data is not data
        with pytest.raises(TypeError, match="read-only"):
            event.data["new"] = 1
        exact = exact_size(event.data)
        # Both sizes bound the exact size, and neither passes the limit.
        assert exact <= inline[2] <= max_bytes
        assert exact <= walk[2] <= max_bytes
    return inline[0]


def _via_make_event(data: Any, max_bytes: int) -> tuple[FrozenDict, int]:
    event = make_event(Event, "x", data, max_bytes)
    return event.data, event.data_size


@pytest.mark.parametrize("keys", [0, 1, 2, 3, 4, 10, 30])
def test_make_event_gives_what_the_full_walk_gives(keys: int) -> None:
    """Over many seeded payloads of each width, make_event accepts exactly what
    freeze_data accepts (the same read-only copy) and refuses the rest with the same
    message, with a size bound at or over the exact size and never over the limit."""
    rng = random.Random(1800 + keys)
    seen: set[str] = set()
    for _ in range(400 if keys else 1):
        seen.add(_check_same(_payload(rng, keys, odd=rng.choice([0.0, 0.05, 0.3])), 65_536))
    if keys:
        assert seen == {"accepted", "refused"}  # both sides of the checks were reached


@pytest.mark.parametrize("keys", [1, 2, 3, 10, 30])
def test_both_paths_agree_at_the_limit(keys: int) -> None:
    """Near the limit the decision is exact on both paths: at the exact size accepted,
    one byte under refused, whatever bound the inline path used."""
    rng = random.Random(4200 + keys)
    for _ in range(60):
        data = _payload(rng, keys, odd=0.0)
        data["big"] = rng.choice(["y" * rng.randrange(100, 3000), "é" * 500, "\x07" * 300])
        exact = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        for max_bytes in (exact - 1, exact, exact + 1):
            assert _check_same(data, max_bytes) == ("refused" if max_bytes < exact else "accepted")
        assert make_event(Event, "x", data, exact).data_size == exact


@pytest.mark.parametrize("width", [1, 2, 3, 12])
@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        (_Key("k"), 1, "of type _Key; keys must be str"),
        (1, 1, "of type int; keys must be str"),
        ("\ud800", 1, "not valid Unicode"),
        ("k", "\udfff", "not valid Unicode"),
        ("k", math.nan, "JSON cannot represent"),
        ("k", -math.inf, "JSON cannot represent"),
        ("k", 10**5000, "too large to write as JSON"),
        ("k", {"inner": [1, {2}]}, "data.k.inner[1] is of type set"),
        ("k", b"x", "of type bytes"),
    ],
    ids=[
        "str-subclass-key",
        "int-key",
        "surrogate-key",
        "surrogate-value",
        "nan",
        "minus-inf",
        "int-without-decimal-form",
        "nested-set",
        "bytes",
    ],
)
def test_each_refusal_is_the_full_walks_at_any_width(
    width: int, key: object, value: object, fragment: str
) -> None:
    """One bad key or value among plain ones is refused with the walk's message, at
    the start, middle or end of the dict, whatever its width."""
    plain = {f"p{i}": [i, 1.5, "s", True, None][i % 5] for i in range(width - 1)}
    for position in {0, width // 2, width - 1}:
        items = list(plain.items())
        items.insert(position, (key, value))
        data = dict(items)
        with pytest.raises(InvalidEventError, match=re.escape(fragment)):
            make_event(Event, "x", data, 65_536)
        _check_same(data, 65_536)


@pytest.mark.parametrize("width", [1, 2, 3, 12])
def test_accepted_edges_are_stored_as_the_walk_stores_them(width: int) -> None:
    """Values the inline path leaves to the walk (scalar subclasses, ints past 64 bits,
    non-ASCII text, nested data) are accepted and stored as plain values, and a dict
    subclass or another mapping as the data itself is read for what it holds."""
    plain = {f"p{i}": [i, 1.5, "s", True, None][i % 5] for i in range(width - 1)}
    edges: list[object] = [
        _Text("t"),
        _Level.HIGH,
        _Colour.RED,
        True,
        2**63,
        -(2**63) - 1,
        2**63 - 1,
        "é",
        "😀",
        "\x00",
        {"n": [1, (2.5,)]},
        _Sub(x=1),
    ]
    for value in edges:
        data = {**plain, "edge": value}
        assert _check_same(data, 65_536) == "accepted"
        stored = make_event(Event, "x", data, 65_536).data["edge"]
        assert stored.__class__ in (str, int, bool, FrozenDict)
        for container in (_Sub(data), OrderedDict(data)):
            assert _check_same(container, 65_536) == "accepted"
