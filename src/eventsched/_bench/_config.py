"""What a bench run measures: its sizes (:class:`BenchConfig`) and its metrics (:data:`METRICS`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._jobstart import SAVED_PER_JOB
from ._manyjobs import EVENTSCHED_ONLY, JOB_MISS_REASONS

__all__ = [
    "BACKENDS",
    "METRICS",
    "NO_RATIO_UNITS",
    "POLICIES",
    "QUICK",
    "WORKLOADS",
    "BenchConfig",
    "Metric",
    "metric",
    "row_label",
]

#: The backends compared, in column order; the first is the one ratios are taken to.
BACKENDS: Final = ("asyncio", "uvloop", "trio")

#: Overflow policies the overflow workload runs, in row order.
POLICIES: Final = ("drop_newest", "drop_oldest", "reject", "block")

WORKLOADS: Final = (
    "throughput",
    "apps",
    "latency",
    "timers",
    "jobs",
    "overflow",
    "shutdown",
    "memory",
    "startup",
)


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """The sizes of one run. Every field is a flag of ``eventsched bench``."""

    reps: int = 5
    """Repetitions per backend, interleaved (asyncio, uvloop, trio, asyncio, ...)."""
    trials: int = 5
    """Trials per repetition, interleaved row by row inside the backend's process.

    A repetition's throughput, latency quantiles, costs per call and overflow emit
    rates are its best trial's (noise on a shared machine only ever makes a run
    worse); timer quantiles are taken over the fire times of all its trials (a
    trial's 200 are too few for a p99 of its own). Sizes below are per row and
    repetition, split evenly between the trials.
    """
    events: int = 200_000
    """Events per throughput row."""
    queue_size: int = 1000
    """Queue capacity in the throughput and latency workloads (and the references)."""
    latency_events: int = 20_000
    """Events per latency row, emitted at :attr:`rate` (a trial's p99 is its 40th slowest).

    The machine row (a busy loop's pauses) runs as long as one row, trial by trial."""
    latency_processes: int = 5
    """Processes the latency workload runs per backend and repetition, interleaved.

    Its tails need more paired runs than the other figures to repeat, and the machine's
    pauses and slow spells change from process to process, so more events in one
    process do not do the same (docs/benchmarks.md, "How it measures").
    """
    rate: float = 10_000.0
    """Events per second the latency producer is paced at."""
    overflow_events: int = 50_000
    """Events the fast producer emits per overflow policy (over all its trials)."""
    overflow_queue: int = 100
    """Queue capacity in the overflow workload."""
    slow_handler_us: float = 20.0
    """CPU time (busy loop, microseconds) the overflow workload's slow handler takes."""
    timer_runs: int = 1000
    """Fire times per timer row and process (p99 is the 10th latest)."""
    timer_processes: int = 5
    """Processes the timers workload runs per backend and repetition, interleaved.

    For the same reason as :attr:`latency_processes`: with one timer process per
    repetition, uvloop's timer tails moved by up to 45% between two default runs (its
    bare ``sleep_until`` p99 ranged 0.74-5.2 ms from one repetition to the next), while
    25 processes per backend gave the same ratios twice (8 of 8 within 15%).
    """
    timer_interval: float = 0.0051
    """Seconds between fire times.

    Not a whole number of milliseconds, so that over ten fire times the deadlines
    sweep every phase of uvloop's millisecond clock (and of the machine's 4 ms tick)
    instead of keeping the phase a trial happened to start at: at 5 ms, uvloop's job
    p50 ranged from 0.07 to 0.21 ms between the repetitions of one run.
    """
    shutdown_events: int = 1000
    """Events buffered (a full queue) when SIGTERM arrives."""
    shutdown_handler_us: float = 200.0
    """CPU time per event of the handler that drains them."""
    memory_events: int = 100_000
    """Events buffered to measure the resident memory per event."""
    apps_events: int = 20_000
    """Events per row of the apps workload (I/O handlers, fan-out, sync handlers),
    over all its trials."""
    io_concurrency: int = 200
    """apps: handler tasks (and peers' consumers) of the I/O row: how many are in flight."""
    jobs: int = 10_000
    """jobs: interval jobs of the larger row; the smaller row has a tenth of them."""
    job_interval: float = 2.0
    """jobs: seconds between a job's fire times."""
    job_seconds: float = 4.0
    """jobs: seconds measured per row (after the first fire time)."""
    job_gc_freeze: bool = False
    """jobs: in every row (eventsched and APScheduler alike), once the jobs are added,
    a full collection and ``gc.freeze()``, undone after the row: the objects alive then
    are no longer traversed by the collector's full collections, whose pause (~50 ms
    at 10,000 jobs) otherwise sets the p99 of any window it lands in (docs/jobs.md)."""
    workloads: tuple[str, ...] = WORKLOADS
    """The workloads to run, a subset of :data:`WORKLOADS`."""

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["workloads"] = list(self.workloads)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchConfig:
        return cls(**{**data, "workloads": tuple(data.get("workloads", WORKLOADS))})


#: ``--quick``: the smoke test's run, well under 30 s on two busy cores.
QUICK: Final = BenchConfig(
    reps=1,
    trials=1,
    events=20_000,
    latency_events=1000,
    latency_processes=1,
    overflow_events=5000,
    timer_runs=30,
    timer_processes=1,
    shutdown_events=200,
    memory_events=50_000,
    apps_events=2000,
    jobs=1000,
    job_interval=0.5,
    job_seconds=1.0,
)

Better = Literal["higher", "lower"]

#: Units of rows that are no backend's doing (shares and counts near zero, the
#: machine's pauses): they make meaningless ratios, so neither the table nor the
#: chart shows one.
NO_RATIO_UNITS: Final = ("fraction", "count", "stalls/s")

#: Units: ``events/s``, ``us``, ``ms``, ``ns``, ``B``, ``MB``, ``cpu`` (a share of one
#: core, which has a ratio), and the no-ratio units above.


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the report: a figure every backend measures once per repetition."""

    id: str
    """Key in the JSON output: ``<workload>.<what>``."""
    workload: str
    label: str
    unit: str
    """See :data:`NO_RATIO_UNITS` for the list."""
    better: Better
    asyncio_only: bool = False
    """A reference that exists on asyncio only (``asyncio.Queue``, pyee, aiojobs,
    APScheduler): on trio its cell says so."""


def _throughput() -> list[Metric]:
    rows = [
        ("ceiling", "ceiling: bare send/receive_nowait", False),
        ("create", "ref: Event.create alone, no queue", False),
        ("anyio", "ref: anyio idiomatic", False),
        ("asyncio_queue", "ref: asyncio.Queue (demo shape)", True),
        ("eventsched_1", "eventsched, 1 handler task", False),
        ("eventsched_4", "eventsched, 4 handler tasks", False),
    ]
    return [Metric(f"throughput.{k}", "throughput", v, "events/s", "higher", a) for k, v, a in rows]


def _latency() -> list[Metric]:
    rows = [
        ("anyio", "ref: anyio idiomatic", False),
        ("asyncio_queue", "ref: asyncio.Queue", True),
        ("eventsched", "eventsched", False),
    ]
    return [
        *(
            Metric(f"latency.{k}_{p}", "latency", f"{v} {p}", "us", "lower", a)
            for k, v, a in rows
            for p in ("p50", "p95", "p99")
        ),
        # The machine, not a backend: context for the tails, never a ratio.
        Metric(
            "latency.stall_share", "latency", "machine: time lost to pauses", "fraction", "lower"
        ),
        Metric("latency.stall_rate", "latency", "machine: pauses > 20 us", "stalls/s", "lower"),
    ]


def _overflow() -> list[Metric]:
    metrics = [
        Metric("overflow.accepted_ns", "overflow", "cost per accepted emit_nowait", "ns", "lower")
    ]
    for policy in POLICIES:
        metrics.append(
            Metric(f"overflow.{policy}.dropped", "overflow", f"{policy}: lost", "fraction", "lower")
        )
        metrics.append(
            Metric(
                f"overflow.{policy}.emit_rate",
                "overflow",
                f"{policy}: producer emit rate",
                "events/s",
                "higher",
            )
        )
        if policy != "block":
            metrics.append(
                Metric(
                    f"overflow.{policy}.drop_ns",
                    "overflow",
                    f"{policy}: cost per drop",
                    "ns",
                    "lower",
                )
            )
    return metrics


def _apps() -> list[Metric]:
    rows = [
        ("io", "eventsched, I/O handlers", False),
        ("anyio_io", "ref: anyio stream, I/O handlers", False),
        ("asyncio_queue_io", "ref: asyncio.Queue, I/O handlers", True),
        ("aiojobs_io", "ref: aiojobs, I/O handlers", True),
        ("fanout", "eventsched, fan-out to 10", False),
        ("pyee_fanout", "ref: pyee, fan-out to 10", True),
        ("sync", "eventsched, sync handlers", False),
    ]
    return [
        *(Metric(f"apps.{k}_rate", "apps", v, "events/s", "higher", a) for k, v, a in rows),
        *(
            Metric(f"apps.{k}_cpu_us", "apps", f"{v}: CPU/event", "us", "lower", a)
            for k, v, a in rows
        ),
        Metric("apps.rss_mb", "apps", "process RSS after the rows", "MB", "lower"),
    ]


def _jobs() -> list[Metric]:
    metrics = []
    rows = [
        ("tenth", "", "eventsched", False),
        ("tenth", "aps_", "ref: APScheduler 3", True),
        ("many", "", "eventsched", False),
        ("many", "aps_", "ref: APScheduler 3", True),
        ("many", "state_", "eventsched + state file", False),
    ]
    for size, prefix, who, only in rows:
        text, key = f"{who}, {{{size}}} jobs:", f"jobs.{prefix}{size}"
        metrics += [
            Metric(f"{key}_cpu_share", "jobs", f"{text} CPU", "cpu", "lower", only),
            Metric(f"{key}_p50", "jobs", f"{text} late p50", "ms", "lower", only),
            Metric(f"{key}_p99", "jobs", f"{text} late p99", "ms", "lower", only),
            # Fire times in the window: how many, how many ran, the misses reported
            # by reason (APScheduler reports no coalesced ones), and the rest.
            Metric(f"{key}_fires", "jobs", f"{text} fire times", "count", "higher", only),
            Metric(f"{key}_ran", "jobs", f"{text} ran", "count", "higher", only),
            *(
                Metric(f"{key}_{reason}", "jobs", f"{text} {word}", "count", "lower", only)
                for reason, word in JOB_MISS_REASONS.items()
                if prefix != "aps_" or reason not in EVENTSCHED_ONLY
            ),
            Metric(f"{key}_unreported", "jobs", f"{text} unreported", "count", "lower", only),
        ]
    # A process of its own started on a state file of saved jobs (see _jobstart).
    text = "eventsched, {start} saved jobs: start-up"
    return [
        *metrics,
        Metric("jobs.start_wall_ms", "jobs", text, "ms", "lower"),
        Metric("jobs.start_cpu_ms", "jobs", f"{text} CPU", "ms", "lower"),
        Metric("jobs.start_rows", "jobs", f"{text}, rows written", "count", "lower"),
    ]


def row_label(m: Metric, config: dict[str, Any]) -> str:
    """The row's label, with the run's job counts put in."""
    jobs = int(config.get("jobs", 0))
    if "{" not in m.label:
        return m.label
    return m.label.format(tenth=max(1, jobs // 10), many=jobs, start=SAVED_PER_JOB * jobs)


METRICS: Final[tuple[Metric, ...]] = (
    *_throughput(),
    *_apps(),
    *_latency(),
    *_overflow(),
    Metric("timers.bare_p50", "timers", "ref: bare sleep_until p50", "ms", "lower"),
    Metric("timers.bare_p99", "timers", "ref: bare sleep_until p99", "ms", "lower"),
    Metric("timers.jobs_p50", "timers", "eventsched job p50", "ms", "lower"),
    Metric("timers.jobs_p99", "timers", "eventsched job p99", "ms", "lower"),
    Metric("shutdown.exit_ms", "shutdown", "SIGTERM to exit, queue full", "ms", "lower"),
    Metric("shutdown.drain_ms", "shutdown", "begin shutdown to drained", "ms", "lower"),
    Metric("shutdown.handled", "shutdown", "buffered events handled", "fraction", "higher"),
    Metric("shutdown.unaccounted", "shutdown", "events unaccounted", "count", "lower"),
    *_jobs(),
    Metric("memory.anyio", "memory", "ref: anyio stream", "B", "lower"),
    Metric("memory.asyncio_queue", "memory", "ref: asyncio.Queue", "B", "lower", True),
    Metric("memory.eventsched", "memory", "eventsched", "B", "lower"),
    Metric("startup.ready_ms", "startup", "eventsched: start to first event", "ms", "lower"),
)

_BY_ID: Final = {m.id: m for m in METRICS}


def metric(metric_id: str) -> Metric:
    """The metric with this id."""
    return _BY_ID[metric_id]
