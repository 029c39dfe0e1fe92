"""What tracing costs the event pipeline, off and on: a same-run ratio.

Each measurement is a fresh process that pushes events through an ``EventScheduler``
(``overflow="block"``, one trivial async handler) for a fixed window and reports the
handled events per second. The arms, interleaved in a rotating order within each
repetition:

- ``plain``: no tracing, this tree;
- ``base`` (with ``--base-src DIR``): ``plain`` on another tree's ``src`` (a ``git
  worktree`` of the commit before tracing): tracing off must cost nothing;
- ``imported``: ``eventsched.tracing`` and OpenTelemetry imported, never used;
- ``api``: ``instrument(scheduler)`` with no SDK configured: OpenTelemetry's no-op
  spans, so the cost of the wrappers themselves;
- ``sdk``: ``instrument(scheduler)`` with the SDK's ``TracerProvider``, a
  ``BatchSpanProcessor`` (what an application exports through) and an exporter that
  drops what it is given: every span made, recorded, batched, and thrown away.

The ratio of each repetition (``arm / plain``) is taken within the repetition, and the
median and range over repetitions are printed; the range is the noise. Figures go in
docs/benchmarks.md::

    uv run python benchmarks/bench_tracing_cost.py --reps 7 --seconds 3 [--base-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from _arms import checked, handled_rate, print_rates

WARM_UP = 0.5  # seconds before the window opens

ARMS = ("plain", "base", "imported", "api", "sdk")


def child(backend: str, arm: str, seconds: float) -> None:
    """One measurement: one JSON line of figures."""
    import anyio

    from eventsched import Event, EventScheduler

    scheduler = EventScheduler(queue_size=1024, overflow="block", workers=1, grace_period=1)

    @scheduler.on("tick")
    async def tick(event: Event) -> None:
        pass

    if arm in ("imported", "api", "sdk"):
        from eventsched.tracing import instrument
    if arm == "api":
        instrument(scheduler)  # no provider set: OpenTelemetry's no-op tracer
    if arm == "sdk":
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Dropping(SpanExporter):
            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Dropping()))
        instrument(scheduler, tracer_provider=provider)

    async def main() -> dict[str, Any]:
        return await handled_rate(scheduler, seconds, WARM_UP)

    print(json.dumps(anyio.run(main, backend=backend)), flush=True)


def measure(backend: str, arm: str, seconds: float, base_src: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if arm == "base":
        assert base_src is not None
        env["PYTHONPATH"] = base_src
    mode = "plain" if arm == "base" else arm
    command = [sys.executable, __file__, "--child", backend, mode, str(seconds)]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"{arm} child failed:\n{out.stderr}")
    figures: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--backends", default="asyncio,trio")
    parser.add_argument("--base-src", help="another tree's src directory: the base arm")
    parser.add_argument(
        "--arms", default="imported,api,sdk", help="besides plain (and base), comma-separated"
    )
    args = parser.parse_args()
    arms = ["plain"] + (["base"] if args.base_src else [])
    arms += [arm for arm in args.arms.split(",") if arm]
    unknown = set(arms) - set(ARMS)
    if unknown:
        parser.error(f"--arms: unknown {sorted(unknown)}; allowed: {', '.join(ARMS)}")
    for backend in args.backends.split(","):
        rates: dict[str, list[float]] = {arm: [] for arm in arms}
        for rep in range(args.reps):
            order = arms[rep % len(arms) :] + arms[: rep % len(arms)]
            for arm in order:
                figures = measure(backend, arm, args.seconds, args.base_src)
                rates[arm].append(checked(figures, arm, args.base_src))
        print_rates(backend, args.reps, args.seconds, rates)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        main()
