"""Run the workloads: one subprocess per backend, workload and repetition, with progress.

Runs are interleaved workload by workload (throughput on asyncio, uvloop, trio, then
latency on each, ...) so that drift on a shared machine (other processes, CPU
frequency) hits every backend alike, and the two figures of a ratio are seconds apart.
Each run is a fresh process: no backend inherits another's warmed-up state, and
uvloop never shares a process with plain asyncio.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from ._config import BACKENDS, METRICS, WORKLOADS, BenchConfig, row_label
from ._document import SCHEMA
from ._report import summarize

__all__ = ["SCHEMA", "BenchError", "Progress", "backend_status", "describe_machine", "run_bench"]

_PACKAGES: Final = (
    "eventsched",
    "anyio",
    "trio",
    "uvloop",
    "apscheduler",
    "pyee",
    "aiojobs",
    "loguru",
    "pydantic-settings",
    "matplotlib",
)


class BenchError(Exception):
    """A backend's process failed; the message names the backend and its last error line."""


@dataclass(frozen=True, slots=True)
class BackendStatus:
    name: str
    available: bool
    note: str
    """Why it is unavailable (empty when it is)."""


def backend_status(name: str) -> BackendStatus:
    """Whether ``name`` can run here (uvloop is an optional extra)."""
    if name == "uvloop" and importlib.util.find_spec("uvloop") is None:
        return BackendStatus(
            name,
            False,
            "not installed (pip install 'eventsched[uvloop]', or uv sync --extra uvloop)",
        )
    if name == "uvloop" and sys.platform == "win32":  # pragma: no cover - not our CI
        return BackendStatus(name, False, "not available on Windows")
    return BackendStatus(name, True, "")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe_machine() -> dict[str, Any]:
    """Python, package versions, CPU count and load: what a figure depends on."""
    load: list[float] | None
    try:
        load = list(os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        load = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model() or platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": load,
        "packages": {name: _version(name) for name in _PACKAGES},
        "source": _source(),
    }


def _source() -> dict[str, Any] | None:
    """The git commit eventsched runs from, and whether its files differ from it."""
    here = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "modified": sorted(line[3:] for line in changed if line.strip())}


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        return None
    return None


class Progress:
    """One status line on stderr: rewritten in place on a terminal, a line per step otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self.started = time.perf_counter()
        self._width = 0

    def detail(self, text: str) -> None:
        """A step inside the current one: shown on a terminal only, where it replaces
        the line; in a log it would repeat the step's own line."""
        if self.live:
            self.show(text)

    def show(self, text: str) -> None:
        elapsed = time.perf_counter() - self.started
        line = f"[{self.done}/{self.total} runs, {elapsed:5.0f} s] {text}"
        if self.live:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


def _run_child(
    backend: str, config: BenchConfig, label: str, progress: Progress
) -> dict[str, float]:
    command = [
        sys.executable,
        "-m",
        "eventsched._bench._child",
        backend,
        json.dumps(config.as_dict()),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    assert proc.stdout is not None
    errors: list[str] = []
    for line in proc.stderr:  # the child's stdout is one short line: no deadlock
        if line.startswith("@ "):
            progress.detail(f"{label} {backend}: {line[2:].strip()}")
        elif line.strip():
            errors.append(line.rstrip())
    out = proc.stdout.read()
    proc.wait()
    if proc.returncode != 0 or not out.strip():
        last = errors[-1] if errors else f"exit code {proc.returncode}"
        raise BenchError(f"the {backend} run ({label}) failed: {last}")
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def run_bench(
    config: BenchConfig, backends: Sequence[str], *, stream: TextIO | None = None
) -> dict[str, Any]:
    """Run every backend ``config.reps`` times, interleaved; return the JSON document.

    :raises BenchError: a backend's process failed
    """
    statuses = [backend_status(name) for name in backends]
    runnable = [s.name for s in statuses if s.available]
    workloads = [w for w in WORKLOADS if w in config.workloads]
    processes = {"latency": config.latency_processes, "timers": config.timer_processes}
    runs = {w: processes.get(w, 1) for w in workloads}
    progress = Progress(config.reps * len(runnable) * sum(runs.values()), stream)
    samples: dict[str, dict[str, list[float]]] = {}
    order: list[list[str]] = []
    started = datetime.now(UTC)
    clock = time.perf_counter()
    machine = describe_machine()
    try:
        for rep in range(config.reps):
            label = f"rep {rep + 1}/{config.reps}"
            # Interleaved workload by workload (throughput on asyncio, uvloop, trio, then
            # latency on each, ...), a fresh process each: the figures a ratio pairs are
            # seconds apart, not a whole repetition (half a minute), and this machine's
            # slow spells last seconds.
            # The latency and timers workloads run in several processes per backend
            # (asyncio, uvloop, trio, asyncio, ...): see BenchConfig.latency_processes.
            for workload in workloads:
                one = dataclasses.replace(config, workloads=(workload,))
                for _ in range(runs[workload]):
                    for backend in runnable:
                        progress.show(f"{label} {backend}: {workload}")
                        figures = _run_child(backend, one, label, progress)
                        order.append([backend, workload])
                        for metric_id, value in figures.items():
                            per = samples.setdefault(metric_id, {})
                            per.setdefault(backend, []).append(value)
                        progress.done += 1
    finally:
        progress.close()
    metrics = {
        m.id: {
            "workload": m.workload,
            "label": row_label(m, config.as_dict()),
            "unit": m.unit,
            "better": m.better,
            "asyncio_only": m.asyncio_only,
            "samples": {b: samples[m.id][b] for b in runnable if b in samples.get(m.id, {})},
        }
        for m in METRICS
        if m.workload in config.workloads and samples.get(m.id)
    }
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - clock, 2),
        "machine": machine,
        "config": config.as_dict(),
        "backends": {s.name: {"available": s.available, "note": s.note} for s in statuses},
        "baseline": BACKENDS[0],
        "order": order,
        "metrics": metrics,
    }
    document["summary"] = summarize(document)
    return document
