"""Nanoseconds per step of the event hot path, this tree against another (issue 18).

Each measurement is a fresh process that times every step with ``timeit`` (the fastest
of ``--repeat`` groups, as timeit advises: noise only ever adds time); the two trees
alternate, repetition by repetition. A cell is the median over repetitions. Steps:

* ``make_event`` with no data, ``{"n": 1}`` and ten keys of ints, floats, strings, a
  bool and a None (what ``emit(type, data)`` builds);
* ``id`` first read (made lazily since issue 18; before, a field read);
* ``offer + take``: the queue's ``offer`` and a worker's ``receive_nowait``;
* ``pipeline``: ``await emit`` to one trivial async handler, per event, both backends.

With ``--msgspec`` (run under ``uv run --with msgspec``), this tree's process also times
validating and sizing the same data with ``msgspec.json.encode`` against the
pure-Python checks make_event inlines, in the same process. Figures in
docs/benchmarks.md.

    uv run python benchmarks/bench_event_steps.py --base /tmp/base/src --reps 5
    uv run --with msgspec python benchmarks/bench_event_steps.py --base /tmp/base/src --msgspec
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, math, sys, time, timeit, anyio
from eventsched import Event, EventScheduler, EventType
from eventsched._events import make_event
from eventsched._eventdata import FrozenDict

repeat, with_msgspec = int(sys.argv[1]), sys.argv[2] == "1"
KIND = EventType.JOB_STARTED
ONE = {"n": 1}
TEN = {"a": 1, "b": 2.5, "c": "hello", "d": 42, "e": 3.14159, "f": "world", "g": True,
       "h": None, "i": 123456789, "j": "x" * 20}
N = 20_000

def ns(stmt, setup="pass", **names):
    best = min(timeit.repeat(stmt, setup, globals=dict(names, make=make_event, Event=Event,
                                                       KIND=KIND, ONE=ONE, TEN=TEN),
                             number=N, repeat=repeat))
    return best / N * 1e9

out = {
    "make_event, no data": ns("make(Event, KIND, None, 65536)"),
    "make_event, 1 key": ns("make(Event, KIND, ONE, 65536)"),
    "make_event, 10 keys": ns("make(Event, KIND, TEN, 65536)"),
    "Event.create, 1 key": ns("Event.create(KIND, ONE)"),
}
events = [make_event(Event, KIND, ONE, 65536) for _ in range(N * repeat)]
it = iter(events)
out["id, first read"] = ns("next(it).id", it=it)

async def offer_take():
    scheduler = EventScheduler(queue_size=1000, overflow="block")
    async with scheduler:
        queue = scheduler._queue
        event = make_event(Event, KIND, ONE, 65536)
        def step():
            queue.offer(event)
            queue.receive_nowait()
            queue.received += 1
        return ns("step()", step=step)

def pipeline(data, n=50_000):
    async def main():
        scheduler = EventScheduler(queue_size=1000, overflow="block")
        async def handler(event):
            pass
        scheduler.on(KIND, handler)
        async with scheduler:
            start = time.perf_counter()
            for _ in range(n):
                await scheduler.emit(KIND, data)
        return (time.perf_counter() - start) / n * 1e9
    return main

for backend in ("asyncio", "trio"):
    out[f"offer + take ({backend})"] = anyio.run(offer_take, backend=backend)
    out[f"pipeline, 1 key ({backend})"] = min(
        anyio.run(pipeline(ONE), backend=backend) for _ in range(3))
    out[f"pipeline, 10 keys ({backend})"] = min(
        anyio.run(pipeline(TEN), backend=backend) for _ in range(3))

if with_msgspec:
    import msgspec
    encode = msgspec.json.encode
    PLAIN = frozenset({str, int, float, bool, type(None)})
    INT_MIN, INT_MAX = -(2**63), 2**63 - 1
    FMAX = sys.float_info.max
    FMIN = -FMAX
    new, update = dict.__new__, dict.update

    def checked_by_msgspec(data):
        # What msgspec needs besides the encode to give the same guarantees: plain str
        # keys, plain scalar values (it writes subclasses, sets, dates...), finite
        # floats (it writes nan as null); the encode gives the exact size.
        if not set(map(type, data)) <= {str} or not set(map(type, data.values())) <= PLAIN:
            return None
        for value in data.values():
            if value.__class__ is float and not math.isfinite(value):
                return None
        size = len(encode(data))
        frozen = new(FrozenDict)
        update(frozen, data)
        return frozen, size

    def checked_in_python(data):
        # make_event's inline checks, as a function of their own.
        size = 2
        for key, value in data.items():
            kind = value.__class__
            if key.__class__ is not str or not key.isascii():
                return None
            if kind is str:
                if not value.isascii():
                    return None
                size += 6 * (len(key) + len(value)) + 6
            elif kind is int:
                if not INT_MIN <= value <= INT_MAX:
                    return None
                size += 6 * len(key) + 26
            elif kind is float:
                if not FMIN <= value <= FMAX:
                    return None
                size += 6 * len(key) + 28
            elif kind is bool or value is None:
                size += 6 * len(key) + 26
            else:
                return None
        frozen = new(FrozenDict)
        update(frozen, data)
        return frozen, size

    for label, data in (("1 key", ONE), ("10 keys", TEN)):
        out[f"data checks, pure Python, {label}"] = ns("f(d)", f=checked_in_python, d=data)
        out[f"data checks, msgspec, {label}"] = ns("f(d)", f=checked_by_msgspec, d=data)
print(json.dumps(out))
"""


def _measure(src: str, repeat: int, msgspec: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(repeat), "1" if msgspec else "0"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="src directory of the tree to compare with")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=15, help="timeit groups per step")
    parser.add_argument("--msgspec", action="store_true", help="also time msgspec's checks")
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent.parent / "src")
    base_runs, this_runs = [], []
    for _ in range(args.reps):
        base_runs.append(_measure(args.base, args.repeat, msgspec=False))
        this_runs.append(_measure(here, args.repeat, msgspec=args.msgspec))
    print(f"{'step':40} {'before ns':>10} {'after ns':>10} {'after/before':>13}")
    for key in this_runs[0]:
        after = statistics.median(run[key] for run in this_runs)
        if key in base_runs[0]:
            before = statistics.median(run[key] for run in base_runs)
            print(f"{key:40} {before:10.0f} {after:10.0f} {after / before:13.2f}")
        else:
            print(f"{key:40} {'':>10} {after:10.0f}")


if __name__ == "__main__":
    main()
