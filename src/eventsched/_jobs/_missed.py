"""``JOB_MISSED``: counting, logging and describing the fire times of a job that did not
become runs, whatever the reasons, as one report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from loguru import logger

from ._entry import Entry
from ._planning import Miss
from ._records import MissReason

__all__ = ["MAX_LISTED", "count_misses"]

log = logger.bind(component="jobs")

#: Fire times listed in one ``JOB_MISSED`` event; ``count`` has the full number.
MAX_LISTED = 10


def count_misses(
    job: Entry,
    miss: Miss | Sequence[Miss],
    now: datetime,
    counts: dict[MissReason, int],
    wanted: bool,
    running: int | None = None,
) -> dict[str, Any] | None:
    """Count the misses of one job (in ``counts`` and the job's own) and log them; the
    data of their ``JOB_MISSED`` event if ``wanted`` (anyone would receive it).

    Several reasons at once (some fire times coalesced, the last one over
    ``max_instances``) still make one event: ``reason`` is the first, ``by_reason``
    has them all, ``count`` the total. ``running``: the runs of the job in progress
    when its limit was found reached (across processes, for a shared store); None: here.
    """
    misses = (miss,) if isinstance(miss, Miss) else tuple(miss)
    by_reason: dict[str, int] = {}
    for one in misses:
        count = len(one.fire_times)
        counts[one.reason] += count
        key = str(one.reason)
        job.missed[key] = job.missed.get(key, 0) + count
        by_reason[key] = by_reason.get(key, 0) + count
    fire_times = sorted(at for one in misses for at in one.fire_times)
    reason = misses[0].reason
    first = fire_times[0].isoformat() if fire_times else None
    log.warning(
        "Job {}: {} fire time(s) missed ({}), first {}",
        job.id,
        len(fire_times),
        ", ".join(by_reason),
        first,
    )
    if not wanted:
        return None
    data: dict[str, Any] = {
        "job_id": job.id,
        "reason": str(reason),
        "count": len(fire_times),
        "by_reason": by_reason,
        "more": any(one.more for one in misses),
        "fire_times": [at.isoformat() for at in fire_times[:MAX_LISTED]],
        "first_fire_time": first,
        "last_fire_time": fire_times[-1].isoformat() if fire_times else None,
        "detected_at": now.isoformat(),
    }
    reasons = {one.reason for one in misses}
    if MissReason.MAX_INSTANCES in reasons:
        data["running"] = job.running if running is None else running
        data["max_instances"] = job.max_instances
    if MissReason.MISFIRE in reasons:
        data["misfire_grace_time"] = job.misfire_grace_time
    return data
