"""Handing back claimed fire times whose runs never started, or reporting them.

A pass claims a job's due fire times in the job store, moving the saved schedule past
them, before their runs start (:mod:`._store`). A run that then never begins (shutdown
came first: before its fire time, before its lane took it up, or while the claim was
being saved) must not take its fire time with it. It hands it back: the schedule moves
back to it, so that the next start, or another process sharing the store, runs it.

With a backlog (``coalesce=False`` after a restart, or a slow machine) one pass claims
several fire times of a job, and shutdown may stop any number of their runs, in any
order (trio runs ready tasks in random order). So the schedule goes back to the
**earliest** fire time handed back, not to whichever came last.

Handing back a fire time brings every fire time of the trigger from it on round again.
That is safe only while none of those has started a run or been reported: a fire time
is handed back only if it is later than the job's ``settled`` mark (the latest fire
time that started a run here, was reported missed, or was handled by another process).
One that cannot be handed back (a later one already ran; the job was removed, replaced
or exhausted) is reported instead, as ``shutdown``: at most once, and never silently.

**Claimed ahead.** With a durable store a pass claims fire times up to its claim lead
ahead (see :mod:`._scheduler`), so the job may change between the claim and the fire
time. Each run decides when its fire time comes (:func:`at_fire_time`): a job paused
meanwhile hands the fire time back (the schedule returns to it; resuming skips it, as
every fire time while paused); a job removed or replaced (or standing by for another
process's definition) cannot take it back, and it is reported ``withdrawn``; a job
whose ``max_instances`` runs are still going reports it ``max_instances``, as a pass
would have had it claimed the fire time at that moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from ._entry import Entry
from ._planning import Miss
from ._records import MissReason

__all__ = [
    "GIVEN_BACK",
    "at_fire_time",
    "give_back",
    "resume_from",
    "settle",
    "settle_before",
    "trigger_time",
]

# The resolution of datetime: "every fire time before t" is "up to t - 1 us".
_TICK: Final = timedelta(microseconds=1)


def settle(job: Entry, at: datetime) -> None:
    """``at`` started a run, was reported, or was handled elsewhere: no claimed fire
    time up to it may be handed back any more."""
    settled = job.settled
    if settled is None or at > settled:
        job.settled = at


def settle_before(job: Entry, at: datetime) -> None:
    """Every fire time before ``at`` is handled (the schedule was taken up at ``at``)."""
    settle(job, at - _TICK)


def resume_from(job: Entry, now: datetime) -> datetime:
    """Where a resumed job's schedule starts again: ``now``, or just after its latest
    claimed fire time if that is later (claimed ahead before the pause, its run still
    waiting: it runs once, from that claim, never from a second one)."""
    last = job.last_fire
    return now if last is None or last < now else last + _TICK


def trigger_time(job: Entry, fire_time: datetime) -> datetime:
    """The trigger's fire time behind a run's (the first of a pass carries the jitter)."""
    unjittered = job.unjittered
    return unjittered.get(fire_time, fire_time) if unjittered else fire_time


def give_back(job: Entry, fire_time: datetime) -> bool:
    """Move the schedule back to a claimed fire time whose run never started; False:
    it cannot be, and must be reported.

    The saved schedule then returns to the earliest fire time handed back, so that the
    next start or, with a shared store, another process runs it, rather than nobody.
    """
    if job.removed or not job.persist:
        return False  # no schedule of its own to return to (removed, replaced, exhausted)
    at = trigger_time(job, fire_time)
    settled = job.settled
    if settled is not None and at <= settled:
        return False  # a later fire time ran or was reported: it would come round again
    if job.next_fire is None or at < job.next_fire:
        job.set_next(at)
    return True


#: :func:`at_fire_time`'s answer for a fire time handed back to the schedule.
GIVEN_BACK: Final = Miss(MissReason.WITHDRAWN, ())


def at_fire_time(job: Entry, fire_time: datetime) -> Miss | None:
    """Whether a claimed run may start now that its fire time has come: None (it
    starts), :data:`GIVEN_BACK`, or the miss to report (the fire time is settled)."""
    if job.paused or job.withdrawn:
        if give_back(job, fire_time):
            return GIVEN_BACK
        miss = Miss(MissReason.WITHDRAWN, (fire_time,))
    elif job.running >= job.max_instances:
        miss = Miss(MissReason.MAX_INSTANCES, (fire_time,))
    else:
        return None
    settle(job, fire_time)
    return miss
