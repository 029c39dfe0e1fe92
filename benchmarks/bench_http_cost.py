"""What the HTTP service and a Prometheus scraper cost the event pipeline: a same-run ratio.

Each measurement is a fresh process that pushes events through an ``EventScheduler``
(``overflow="block"``, one trivial async handler) for a fixed window and reports the
handled events per second. The arms, interleaved in a rotating order within each
repetition:

- ``plain``: no HTTP service;
- ``http``: the HTTP service added as ``--http`` adds it (``HttpService`` +
  ``add_service``), and this process scraping ``/metrics`` once a second throughout;
- ``idle`` (with ``--idle``): the HTTP service, never scraped, to tell the service's own
  cost from the scrapes';
- ``imports`` (with ``--imports``): no service, but its modules imported (Starlette,
  Hypercorn, prometheus_client), to tell the cost of having them loaded;
- ``frozen`` (with ``--frozen``): as ``imports``, then ``gc.freeze()``, to test whether
  the cost of ``imports`` is the garbage collector walking the loaded modules' objects;
- ``base`` (with ``--base-src DIR``): ``plain`` on another tree's ``src`` (e.g. a
  ``git worktree`` of the commit before), to check the pipeline itself did not move.

The ratio of each repetition (``http / plain``) is taken within the repetition, and the
median and range over repetitions are printed; the range is the noise. Figures go in
docs/benchmarks.md::

    uv run python benchmarks/bench_http_cost.py --reps 7 --seconds 4 [--base-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

from _arms import checked, handled_rate, print_rates

WARM_UP = 0.5  # seconds before the window opens: imports and the first scrape settle


def child(backend: str, arm: str, seconds: float) -> None:
    """One measurement: print ``PORT n`` (http arm), then one JSON line of figures."""
    import anyio

    from eventsched import Event, EventScheduler

    scheduler = EventScheduler(queue_size=1024, overflow="block", workers=1, grace_period=1)

    @scheduler.on("tick")
    async def tick(event: Event) -> None:
        pass

    if arm in ("imports", "frozen"):
        pass  # loaded, never used
    if arm == "frozen":
        import gc

        gc.freeze()  # what is loaded so far is left out of every collection
    if arm in ("http", "idle"):
        from eventsched.http import HttpService

        service = HttpService(scheduler, "127.0.0.1:0")
        scheduler.add_service(service)

    def started() -> None:
        if arm in ("http", "idle"):
            print(f"PORT {service.port}", flush=True)

    async def main() -> dict[str, Any]:
        return await handled_rate(scheduler, seconds, WARM_UP, started)

    print(json.dumps(anyio.run(main, backend=backend)), flush=True)


def _scrape(port: int, stop: threading.Event, times: list[float]) -> None:
    url = f"http://127.0.0.1:{port}/metrics"
    while not stop.wait(1.0):
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                reply.read()
        except OSError:
            if stop.is_set():
                return  # the child stopped between the wait and the request
            raise
        times.append(time.perf_counter() - start)


def measure(backend: str, arm: str, seconds: float, base_src: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if arm == "base":
        assert base_src is not None
        env["PYTHONPATH"] = base_src
    mode = "plain" if arm == "base" else arm
    command = [sys.executable, __file__, "--child", backend, mode, str(seconds)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    stop = threading.Event()
    scrapes: list[float] = []
    scraper = None
    if arm == "idle":
        process.stdout.readline()
    if arm == "http":
        port = int(process.stdout.readline().split()[1])
        scraper = threading.Thread(target=_scrape, args=(port, stop, scrapes))
        scraper.start()
    line = process.stdout.readline()
    stop.set()
    if scraper is not None:
        scraper.join()
    if process.wait(timeout=60) != 0:
        raise SystemExit(f"{arm} child failed")
    figures: dict[str, Any] = json.loads(line)
    figures["scrapes"] = scrapes
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--backends", default="asyncio,trio")
    parser.add_argument("--base-src", help="another tree's src directory: the base arm")
    parser.add_argument("--idle", action="store_true", help="add the unscraped service arm")
    parser.add_argument("--imports", action="store_true", help="add the imports-only arm")
    parser.add_argument("--frozen", action="store_true", help="add the gc.freeze() arm")
    parser.add_argument("--no-http", action="store_true", help="leave out the scraped arm")
    args = parser.parse_args()
    arms = ["plain"] + ([] if args.no_http else ["http"])
    arms += [arm for arm in ("idle", "imports", "frozen") if getattr(args, arm)]
    arms += ["base"] if args.base_src else []
    for backend in args.backends.split(","):
        rates: dict[str, list[float]] = {arm: [] for arm in arms}
        scrape_times: list[float] = []
        for rep in range(args.reps):
            order = arms[rep % len(arms) :] + arms[: rep % len(arms)]
            for arm in order:
                figures = measure(backend, arm, args.seconds, args.base_src)
                rates[arm].append(checked(figures, arm, args.base_src))
                scrape_times += figures["scrapes"]
        print_rates(backend, args.reps, args.seconds, rates)
        if scrape_times:
            median_ms = statistics.median(scrape_times) * 1000
            print(
                f"  scrapes: {len(scrape_times)}, median {median_ms:.1f} ms, "
                f"max {max(scrape_times) * 1000:.1f} ms"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        main()
