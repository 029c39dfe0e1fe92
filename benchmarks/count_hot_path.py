"""Instructions per event on the event hot path, by callgrind (issue 18).

Timings on a shared machine move by 2x between processes; instruction counts do not.
For each tree, backend and row this runs the row under ``valgrind --tool=callgrind``
twice, with ``--small`` and ``--large`` events, and prints
``(count(large) - count(small)) / (large - small)``: the instructions one more event
costs, start-up and shutdown taken out. ``PYTHONHASHSEED=0`` keeps dict and string
hashing the same in every run (a random seed moves a count by ~100). Rows:

* ``ceiling``: bare anyio ``send_nowait`` + ``receive_nowait``;
* ``one_key`` / ``ten_key``: ``await emit(KIND, data)`` to one trivial async handler,
  as in bench_hot_path.py;
* ``floor``: bench_hot_path.py's floor row (the design's parts alone, ``{"n": 1}``).

Needs valgrind. Figures are in docs/benchmarks.md.

    uv run python benchmarks/count_hot_path.py --src /tmp/base/src src --rows one_key
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

from _callgrind import instructions

_BENCH = Path(__file__).resolve().parent / "bench_hot_path.py"


def _child_code() -> str:
    # bench_hot_path.py's child, with its timed loop replaced by one run of one row.
    match = re.search(r'_CHILD = r"""(.*?)"""', _BENCH.read_text(), re.S)
    assert match is not None
    head = match.group(1).split("def best_of(rows):")[0]
    return head + "\nanyio.run(globals()[sys.argv[4]], backend=backend)\n"


def _rows(code: str) -> str:
    return code.replace(
        "\nanyio.run(globals()[sys.argv[4]]",
        '\nglobals()["one_key"], globals()["ten_key"] = pipeline(ONE), pipeline(TEN)'
        "\nanyio.run(globals()[sys.argv[4]]",
    )


def _count(src: str, backend: str, row: str, events: int, script: str) -> int:
    return instructions(src, script, backend, str(events), "1", row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", nargs="+", required=True, help="src directories to count")
    parser.add_argument("--backends", nargs="+", default=["asyncio", "trio"])
    parser.add_argument("--rows", nargs="+", default=["ceiling", "one_key", "ten_key", "floor"])
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--large", type=int, default=22_000)
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as child:
        child.write(_rows(_child_code()))
    try:
        for src in args.src:
            for backend in args.backends:
                for row in args.rows:
                    small = _count(src, backend, row, args.small, child.name)
                    large = _count(src, backend, row, args.large, child.name)
                    per_event = (large - small) / (args.large - args.small)
                    print(f"{src}  {backend:8} {row:8} {per_event:10,.0f} instructions/event")
    finally:
        os.unlink(child.name)


if __name__ == "__main__":
    main()
