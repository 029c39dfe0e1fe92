"""Prometheus metrics, read from the scheduler's own counters at scrape time.

Nothing is added to the event pipeline: a scrape calls ``statistics()``,
``job_statistics()`` and ``job_timings()`` (cheap snapshots the scheduler keeps anyway;
the job timings cost each job run one bucket increment) and turns them into
metric families. Names follow Prometheus' conventions: an ``eventsched_`` prefix, base
units (seconds), ``_total`` on counters.

Label cardinality is bounded: reasons and outcomes are fixed enums, and per-job series
are kept for at most :data:`MAX_JOB_SERIES` jobs (by id, in order); the jobs beyond that
are summed into one series labelled ``job="_other"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Final, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from .. import (
    DropReason,
    Job,
    JobStatistics,
    JobTimings,
    MissReason,
    RejectReason,
    RunHistogram,
    Statistics,
)

__all__ = ["MAX_JOB_SERIES", "MetricsSource", "SchedulerCollector", "registry_for"]

#: Jobs that get series of their own in ``eventsched_job_runs_total``; the rest are
#: summed under ``job="_other"``, so that a scheduler with 100,000 jobs does not send
#: 200,000 series per scrape.
MAX_JOB_SERIES: Final = 100


class MetricsSource(Protocol):
    """What the metrics read: an :class:`~eventsched.EventScheduler` is one."""

    @property
    def state(self) -> str: ...

    def statistics(self) -> Statistics: ...

    def job_statistics(self) -> JobStatistics: ...

    def job_timings(self) -> JobTimings: ...

    def get_jobs(self) -> list[Job]: ...


def _by_reason(
    name: str, doc: str, counts: dict[str, int], reasons: Sequence[str]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["reason"])
    # Every reason is always present (zero included): a series that appears only after
    # the first drop makes rate() blind to that first drop.
    for reason in (*reasons, *sorted(set(counts) - set(reasons))):
        family.add_metric([reason], counts.get(reason, 0))
    return family


def _le(bound: float) -> str:
    # The exposition format's spelling: +Inf, and floats as repr() writes them (1.0).
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _histogram(name: str, doc: str, histogram: RunHistogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(
        name,
        doc,
        buckets=[(_le(bound), n) for bound, n in histogram.cumulative()],
        sum_value=histogram.sum,
    )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class SchedulerCollector(Collector):
    """Collects a scheduler's figures each time the registry is scraped."""

    def __init__(self, source: MetricsSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        stats = self._source.statistics()
        yield from self._events(stats)
        yield from self._jobs(self._source.job_statistics(), self._source.get_jobs())
        timings = self._source.job_timings()
        # Fixed buckets counted at each run (see eventsched._jobs._timings), all jobs
        # together: per-job histograms would multiply the series by the bucket count.
        yield _histogram(
            "eventsched_job_lateness_seconds",
            "Seconds from a job run's fire time to the start of its call",
            timings.lateness,
        )
        yield _histogram(
            "eventsched_job_duration_seconds",
            "Seconds a job run's call took (runs that ended with an outcome)",
            timings.duration,
        )
        state = GaugeMetricFamily(
            "eventsched_scheduler_state",
            "1 for the state the scheduler is in, 0 for the others",
            labels=["state"],
        )
        current = str(self._source.state)
        for name in ("created", "starting", "running", "stopping", "stopped"):
            state.add_metric([name], 1.0 if name == current else 0.0)
        yield state

    @staticmethod
    def _events(stats: Statistics) -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            "eventsched_events_total",
            "Accepted events by outcome (handled, failed, timed_out, aborted)",
            labels=["outcome"],
        )
        outcomes.add_metric(["handled"], stats.handled)
        outcomes.add_metric(["failed"], stats.failed)
        outcomes.add_metric(["timed_out"], stats.timed_out)
        outcomes.add_metric(["aborted"], stats.aborted_in_flight)
        yield outcomes
        yield _counter(
            "eventsched_events_emitted_total", "Emit attempts with an outcome", stats.emitted
        )
        yield CounterMetricFamily(
            "eventsched_events_accepted_total",
            "Events that entered the queue",
            value=stats.accepted,
        )
        yield _by_reason(
            "eventsched_events_dropped_total",
            "Events lost to overflow, by reason",
            dict(stats.dropped),
            [str(reason) for reason in DropReason],
        )
        yield _by_reason(
            "eventsched_events_rejected_total",
            "Emits refused, by reason",
            dict(stats.rejected),
            [str(reason) for reason in RejectReason],
        )
        yield CounterMetricFamily(
            "eventsched_handler_errors_total",
            "Handler calls that raised",
            value=stats.handler_errors,
        )
        yield CounterMetricFamily(
            "eventsched_handler_timeouts_total",
            "Handler calls that exceeded their timeout",
            value=stats.handler_timeouts,
        )
        yield _gauge("eventsched_queue_depth", "Events in the queue now", stats.still_queued)
        yield _gauge("eventsched_queue_capacity", "Size of the bounded queue", stats.queue_capacity)
        yield _gauge(
            "eventsched_queue_high_water",
            "Most events ever buffered at once",
            stats.queue_high_water,
        )
        yield _gauge(
            "eventsched_events_in_flight", "Events handlers are working on now", stats.in_flight
        )
        # The scheduler keeps sampled quantiles, not a histogram: exported as gauges with a
        # quantile label (the summary convention), with the sample count beside them.
        latency = GaugeMetricFamily(
            "eventsched_event_latency_seconds",
            "Seconds from emit to the start of handling (sampled quantiles)",
            labels=["quantile"],
        )
        for quantile, value in (("0.5", stats.latency_p50), ("0.99", stats.latency_p99)):
            if value is not None:
                latency.add_metric([quantile], value)
        yield latency
        yield _gauge(
            "eventsched_event_latency_samples",
            "How many samples the latency quantiles rest on",
            stats.latency_samples,
        )

    @staticmethod
    def _jobs(jobs: JobStatistics, records: list[Job]) -> Iterator[Metric]:
        yield _gauge("eventsched_jobs", "Jobs scheduled", jobs.jobs)
        yield _gauge("eventsched_job_runs_in_progress", "Job runs in progress", jobs.running)
        totals = CounterMetricFamily(
            "eventsched_job_runs_finished_total",
            "Job runs by outcome, all jobs",
            labels=["outcome"],
        )
        totals.add_metric(["completed"], jobs.runs_completed)
        totals.add_metric(["failed"], jobs.runs_failed - jobs.runs_timed_out)
        totals.add_metric(["timed_out"], jobs.runs_timed_out)
        totals.add_metric(["aborted"], jobs.runs_aborted)
        yield totals
        kinds = CounterMetricFamily(
            "eventsched_job_runs_started_total",
            "Job runs started, all jobs, by kind: on schedule, retries, run_job's",
            labels=["kind"],
        )
        scheduled = jobs.runs_started - jobs.runs_retried - jobs.runs_manual
        kinds.add_metric(["scheduled"], scheduled)
        kinds.add_metric(["retry"], jobs.runs_retried)
        kinds.add_metric(["manual"], jobs.runs_manual)
        yield kinds
        yield _by_reason(
            "eventsched_job_missed_total",
            "Fire times that did not become runs, by reason",
            dict(jobs.missed),
            [str(reason) for reason in MissReason],
        )
        per_job = CounterMetricFamily(
            "eventsched_job_runs_total",
            f"Runs per job: started and failed (at most {MAX_JOB_SERIES} jobs, the rest as _other)",
            labels=["job", "outcome"],
        )
        ordered = sorted(records, key=lambda job: job.id)
        for job in ordered[:MAX_JOB_SERIES]:
            per_job.add_metric([job.id, "started"], job.runs)
            per_job.add_metric([job.id, "failed"], job.failures)
        rest = ordered[MAX_JOB_SERIES:]
        if rest:
            per_job.add_metric(["_other", "started"], sum(job.runs for job in rest))
            per_job.add_metric(["_other", "failed"], sum(job.failures for job in rest))
        yield per_job


def registry_for(source: MetricsSource) -> CollectorRegistry:
    """A registry of its own holding only this scheduler's metrics (never the global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SchedulerCollector(source))
    return registry
