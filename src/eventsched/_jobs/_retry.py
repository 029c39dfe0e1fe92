"""Retries: how long a failed run waits before it is tried again (:class:`Backoff`).

A job added with ``retries=N`` is tried up to N more times after a failed run (an
exception or a timeout: a run cut short by its ``timeout`` failed just the same, and
trying again is what a flaky dependency needs). Each retry is a run of its own, with
the correlation id of the first attempt and its ``attempt`` number, announced by a
``JOB_RETRY`` event; the run's task waits out the delay itself (no polling). While a
retry waits, it holds the job's instance slot: it is a run in progress for
``max_instances``, ``running`` and ``wait_idle``, so a fire time meanwhile is missed
(``max_instances``) rather than overlapping the retry.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from loguru import logger

from .._events import Event, EventType
from .._validate import check_int, check_seconds

__all__ = ["MAX_RETRIES", "Backoff", "abort_retry", "retry_event", "retry_policy"]

log = logger.bind(component="jobs")

#: Most retries a job may ask for: a bound, so that a typo cannot retry forever.
MAX_RETRIES: Final = 1000


@dataclass(frozen=True, slots=True)
class Backoff:
    """The delays between the attempts of a failed run.

    The retry after attempt ``n`` (1 is the first run) waits
    ``min(initial * factor ** (n - 1), max_delay)`` seconds, less a random part of up to
    ``jitter`` times that (so that many jobs failing together do not retry in step;
    the cap is never exceeded). ``factor=1`` gives a fixed delay, ``factor=2`` (the
    default) doubles it each time.

    :param initial: seconds before the first retry, >= 0
    :param factor: multiplier per further retry, >= 1
    :param max_delay: the cap, in seconds, >= ``initial``
    :param jitter: fraction of the delay drawn at random, 0 (none, the default) to 1
    """

    initial: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        check_seconds("Backoff initial", self.initial, allow_zero=True)
        check_seconds("Backoff max_delay", self.max_delay, allow_zero=True)
        if self.max_delay < self.initial:
            raise ValueError(
                f"Backoff max_delay={self.max_delay!r} must be >= initial={self.initial!r}"
            )
        for name, value, low, high in (
            ("factor", self.factor, 1.0, 1e6),
            ("jitter", self.jitter, 0.0, 1.0),
        ):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not low <= value <= high:
                raise ValueError(f"Backoff {name}={value!r} must be a number from {low} to {high}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1: the first run)."""
        exponent = min(attempt - 1, 1000)  # factor ** huge would overflow; the cap holds
        try:
            base = min(self.initial * self.factor**exponent, self.max_delay)
        except OverflowError:
            base = self.max_delay
        if self.jitter:
            base -= random.uniform(0, self.jitter * base)
        return base


def retry_policy(retries: Any, retry_backoff: Any) -> Backoff | None:
    """``add_job``'s ``retries`` and ``retry_backoff``, checked, as the Backoff to use.

    ``retry_backoff`` is a :class:`Backoff`, a number (a fixed delay in seconds) or
    None (``Backoff()``: 1 s, doubling, capped at 300 s). None when no retries.
    """
    check_int("retries", retries, minimum=0, maximum=MAX_RETRIES)
    if retry_backoff is None:
        # Shared: a Backoff is frozen. One was built (and checked) per add_job, even
        # for the jobs without retries.
        backoff = _DEFAULT
    elif isinstance(retry_backoff, Backoff):
        backoff = retry_backoff
    else:
        check_seconds("retry_backoff", retry_backoff, allow_zero=True)
        backoff = Backoff(initial=retry_backoff, factor=1.0, max_delay=retry_backoff)
    if retries == 0:
        if retry_backoff is not None:
            raise ValueError("retry_backoff= needs retries= of 1 or more")
        return None
    return backoff


_DEFAULT: Final = Backoff()


class _EventMaker(Protocol):
    def event(self, event_type: EventType, data: Mapping[str, Any], **lineage: Any) -> Event: ...


def retry_event(
    runs: _EventMaker,
    job: Any,
    fire_time: datetime,
    attempt: int,
    error: str,
    lineage: Mapping[str, Any],
) -> Event:
    """The ``JOB_RETRY`` event announcing ``attempt`` of a run whose previous one failed.

    Its lineage is the failed attempt's (same correlation id); the retry's
    ``JOB_STARTED`` names it as its cause.
    """
    backoff = job.backoff
    assert backoff is not None
    delay = backoff.delay(attempt - 1)
    log.info(
        "Job {} attempt {} failed; attempt {} of {} in {:.3f} s (correlation {})",
        job.id,
        attempt - 1,
        attempt,
        job.retries + 1,
        delay,
        lineage["correlation_id"],
    )
    data = {
        "job_id": job.id,
        "fire_time": fire_time.isoformat(),
        "attempt": attempt,
        "delay": delay,
        "error": error,
    }
    return runs.event(EventType.JOB_RETRY, data, **lineage)


class _Counting(Protocol):
    aborted: int


def abort_retry(runs: _Counting, job: Any, retry: Event) -> None:
    """A retry that was waiting its delay when shutdown came: counted and logged as
    aborted (its run was counted as started when the retry was announced)."""
    runs.aborted += 1
    job.last_outcome = "aborted"
    log.warning(
        "Job {} attempt {} (correlation {}) was waiting to retry at shutdown: aborted",
        job.id,
        retry.data["attempt"],
        retry.correlation_id,
    )
