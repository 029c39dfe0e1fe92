"""One backend's process: run every workload once, print the figures as one JSON line.

    python -m eventsched._bench._child BACKEND CONFIG_JSON

Progress goes to stderr, one ``@ workload`` line as each starts, for the parent's display.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from ._apps import apps
from ._config import BenchConfig
from ._jobstart import job_start
from ._manyjobs import jobs
from ._target import backend_args
from ._timers import timers
from ._workloads import latency, overflow, throughput

__all__ = ["main"]

_TARGET = [sys.executable, "-m", "eventsched._bench._target"]


def _target(args: list[str], timeout: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*_TARGET, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _last_json(proc: subprocess.Popen[str], what: str, timeout: float) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{what}: no answer within {timeout:g} s") from None
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = err.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise RuntimeError(f"{what} failed: {tail[0]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _target_json(args: list[str], what: str) -> dict[str, Any]:
    """Run a target program to its end: its last JSON line (a bound of 10 minutes)."""
    return _last_json(_target(args, 600), what, 600)


def shutdown(backend: str, config: BenchConfig) -> dict[str, float]:
    """SIGTERM to a process whose queue is full; time to its exit, and the accounting."""
    n = config.shutdown_events
    proc = _target(["shutdown", backend, str(n), str(config.shutdown_handler_us)], 120)
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    if ready.strip() != "ready":
        _last_json(proc, "shutdown target", 30)  # raises with its error
        raise RuntimeError(f"shutdown target said {ready!r} instead of 'ready'")
    sent_at = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    result = _last_json(proc, "shutdown target", 120)
    exited_at = time.monotonic()
    stats = result["stats"]
    return {
        "shutdown.exit_ms": (exited_at - sent_at) * 1e3,
        "shutdown.drain_ms": (result["ended_at"] - result["began_at"]) * 1e3,
        "shutdown.handled": result["handled"] / result["buffered"],
        "shutdown.unaccounted": float(stats["unaccounted"]),
    }


def memory(backend: str, config: BenchConfig, on_asyncio: bool) -> dict[str, float]:
    """Peak RSS growth per buffered event, each structure in a fresh process."""
    structures = ["anyio", "eventsched"] + (["asyncio_queue"] if on_asyncio else [])
    results: dict[str, float] = {}
    for structure in structures:
        args = [f"memory:{structure}", backend, str(config.memory_events)]
        result = _last_json(_target(args, 120), f"memory target {structure}", 120)
        results[f"memory.{structure}"] = (result["after"] - result["before"]) / result["events"]
    return results


def startup(backend: str, config: BenchConfig) -> dict[str, float]:
    """From spawning ``python`` to eventsched's first handled event: the best of the trials.

    The target imports eventsched, starts an :class:`EventScheduler`, emits one event and
    prints ``ready`` from its handler, as an application's first moments would.
    """
    best = float("inf")
    for _ in range(config.trials):
        started = time.monotonic()
        proc = _target(["startup", backend, "1"], 60)
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        took = time.monotonic() - started
        if ready.strip() != "ready":
            _last_json(proc, "startup target", 60)  # raises with its error
            raise RuntimeError(f"startup target said {ready!r} instead of 'ready'")
        # Not communicate(): it would read past what readline() has buffered.
        proc.stdout.read()
        if proc.wait(timeout=60) != 0:
            raise RuntimeError(f"startup target failed: exit code {proc.returncode}")
        best = min(best, took)
    return {"startup.ready_ms": best * 1e3}


def run_all(backend: str, config: BenchConfig) -> dict[str, float]:
    """Every workload of ``config`` on ``backend``: metric id -> figure."""
    name, options = backend_args(backend)
    on_asyncio = name == "asyncio"

    def run(func: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        return anyio.run(func, backend=name, backend_options=options)

    steps: dict[str, Callable[[], dict[str, float]]] = {
        "throughput": lambda: throughput(run, config, on_asyncio),
        "apps": lambda: apps(run, config, on_asyncio),
        "jobs": lambda: {
            **jobs(run, config, on_asyncio),
            **job_start(backend, config.jobs, _target_json),
        },
        "startup": lambda: startup(backend, config),
        "latency": lambda: latency(run, config, on_asyncio),
        "overflow": lambda: overflow(run, config),
        "timers": lambda: timers(run, config),
        "shutdown": lambda: shutdown(backend, config),
        "memory": lambda: memory(backend, config, on_asyncio),
    }
    results: dict[str, float] = {}
    for workload, step in steps.items():
        if workload in config.workloads:
            print(f"@ {workload}", file=sys.stderr, flush=True)
            results.update(step())
    return results


def main(argv: list[str]) -> None:
    backend, config = argv[0], BenchConfig.from_dict(json.loads(argv[1]))
    print(json.dumps(run_all(backend, config)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
