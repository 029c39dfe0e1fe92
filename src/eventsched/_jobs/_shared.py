"""Taking up what another process saved for a job, with a store shared by several.

A :class:`~eventsched.PostgresJobStore` tells the scheduler of rows other processes
wrote: when one of its own saves is refused (the row moved on), and when its watcher
polls (a job resumed, paused or moved earlier elsewhere). Either way the job here
takes up the row's schedule, as decided by :func:`take_up`.

**Two definitions of one job** (the same id, another trigger fingerprint, as during a
rolling deploy): the definition written last wins. A process writes its definition when
it starts (or adds, or resumes the job); a process holding another definition then
stands by for that job: it warns once, does not fire it, does not write its row, and
takes it up again if the row's definition becomes its own (another of its version
started). So old and new replicas never take turns.
"""

from __future__ import annotations

from loguru import logger

from .._events import Event, EventType
from ._entry import Entry
from ._giveback import settle_before
from ._records import MissReason
from ._store import SavedJob

__all__ = ["drop_lost_misses", "take_up"]

log = logger.bind(component="jobs")


def take_up(job: Entry, saved: SavedJob, *, refused: bool) -> bool | None:
    """Apply another process's row to ``job``; whether it goes back on the timeline
    (None: the row holds the definition this one replaced at start, to write over).

    ``refused``: the row came back from a refused save (this process's claim of the
    fire time lost: the row's schedule is the one to follow). Otherwise it comes from a
    poll: only a fire time this process has not handled yet is taken up (a poll's row
    may be older than this process's latest claim, and a fire time is never run twice).
    """
    if job.removed or not (job.persist or job.standby):
        return False
    if saved.fingerprint != job.fingerprint:
        if saved.fingerprint == job.replaces and not job.standby:
            # Our start wrote (or tried to write) over that older definition, and one
            # of its claims slipped in first: ours is still the newer.
            return None
        if not job.standby:
            log.warning(
                "Job {}: another process saved another definition of it ({} there, {} "
                "here); the definition written last wins: this process stands by for it "
                "until the shared schedule is its own again (restart it, or resume_job, "
                "to make it so)",
                job.id,
                saved.fingerprint,
                job.fingerprint,
            )
            job.persist, job.paused = False, True
        job.standing_for = saved  # on standby (again, with the row as now seen)
        return False
    changed = False
    if job.standby:
        log.info("Job {}: the shared schedule is this process's definition again", job.id)
        job.persist, job.standing_for = True, None
        job.paused = bool(saved.paused)
        changed = True
    elif saved.paused is not None and saved.paused != job.paused:
        log.info("Job {}: {} by another process", job.id, "paused" if saved.paused else "resumed")
        job.paused = saved.paused
        changed = True
    following = saved.next_fire_time
    if following is None or job.paused:
        return changed
    if not refused:
        if job.last_fire is not None and following <= job.last_fire:
            return changed  # handled here already (the row is older than our claim)
        if not changed and job.next_fire is not None and following >= job.next_fire:
            return False  # not earlier: our next claim meets the row anyway
    job.last_fire = saved.last_fire_time
    job.set_next(following)
    settle_before(job, following)  # handled by then: a claim before it is not handed back
    return True


def drop_lost_misses(
    reports: list[Event], refused: frozenset[str], missed: dict[MissReason, int]
) -> None:
    """Take out of ``reports`` (and of the ``missed`` counts) the misses planned from a
    schedule whose save was refused: they are not this process's to report, since the
    process whose save won planned them from the same row."""
    if not refused:
        return
    kept = []
    for report in reports:
        data = report.data
        if (
            report.type == EventType.JOB_MISSED
            and data.get("job_id") in refused
            and data.get("reason") != MissReason.INTERRUPTED
        ):
            missed[MissReason(data["reason"])] -= data["count"]
        else:
            kept.append(report)
    reports[:] = kept
