"""What a pass claims in a durable job store: how far ahead, how many, and how.

A fire time is claimed in the store before its run starts, so that it runs at most once
even across a crash (:mod:`._store` has the contract). With a durable store (anything
but the default memory store) a pass claims a **lead** ahead (:func:`claim_lead`): it
wakes that long before the earliest fire time and claims every fire time up to twice
the lead beyond it, so that the commit (a worker thread's round trip, tens of
milliseconds on PostgreSQL) is done before the fire times rather than on their path,
and there is one transaction per lead rather than one per few milliseconds. A store may
bound the jobs a pass claims (:func:`claim_limit`: the state file's 256); the next pass
then comes once the lead reaches the next fire time not claimed.

**Claims recorded by a time.** In a store that offers it (the SQLite store:
``claimed_before`` and ``rows_written``), a pass does not write a row per claim. It writes
one time, *claimed before*: every fire time of every job before it has been claimed (or
reported missed). At a start after a crash, a job whose row's next fire time is earlier
than that time had its fire times from there on claimed since the row was written: they
are reported ``interrupted`` (their runs may have ended, as with a run that ended within
``SAVE_DELAY`` before a crash, which is reported so too), and its schedule resumes at
its first fire time from that time on (:func:`claimed_since`). A row per run was most of
what a state file cost (~8 us a run at 10,000 runs a second, one row ~4-5 us in the
worker thread: docs/benchmarks.md); each job's row is now written by the writer once a
round (SAVE_DELAY) with its last run's end, rather than once a run.

The time a pass records is the earliest fire time left on the timeline after it (no
later than the pass's horizon): every job's next fire time is then at or after it, so
every fire time before it was planned by some pass. A job's claims go by that time only
if every one of them is before it, the job fires again within SAVE_DELAY (its row then
waits for the writer no longer than a run's end did; a job that fires rarely writes a
row per claim, which costs little, and its row, as ``eventsched jobs`` shows it, keeps
up), the job has no jitter (its fire times are not its trigger's, so a start could not
work them out) and its row in the file is this definition's, committed (a start with no
row, or another definition's, begins the schedule anew and could run a claimed date
again). Any other claim writes its row, as before.

The time only grows: a claim handed back (a job paused or at ``max_instances`` at its
fire time) puts an earlier fire time on the timeline, which a crash before its next
claim then reports ``interrupted`` rather than runs, as it does a fire time of a job
added within the last pass's lead: at most once holds.

At a clean close every row is written and the time removed: the rows say it all again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Final

from ._entry import Entry
from ._triggers import due_fire_times, next_fire_time

__all__ = ["CLAIM_LEAD", "claim_lead", "claim_limit", "claimed_since", "covered"]

#: Seconds ahead of its fire time a pass claims it in a durable job store that names no
#: ``claim_lead`` of its own (the PostgreSQL store does; SQLite takes this one): the claim's commit
#: is then done before the fire time rather than on its path. The default memory store
#: saves nothing while running and claims nothing ahead.
CLAIM_LEAD: Final = 0.02
#: Fire times are datetimes to the microsecond: "before" is "at most this earlier".
_TICK: Final = timedelta(microseconds=1)
_AT: Final = itemgetter(1)


def claim_lead(store: object) -> float:
    """The claim lead of a durable store: its ``claim_lead``, or :data:`CLAIM_LEAD`."""
    lead = getattr(store, "claim_lead", CLAIM_LEAD)
    return float(lead) if isinstance(lead, int | float) and lead >= 0 else CLAIM_LEAD


def claim_limit(store: object) -> int | None:
    """The most jobs a pass claims in a durable store: its ``claim_limit`` (a positive
    int), or None: every job due within the pass's horizon."""
    limit = getattr(store, "claim_limit", None)
    return limit if type(limit) is int and limit > 0 else None


def covered(
    starts: list[tuple[Entry, datetime]],
    before: datetime,
    soon: datetime,
    rows: Mapping[str, tuple[object, ...]],
) -> list[str]:
    """The ids of the jobs whose claims in ``starts`` (a pass's) the time ``before``
    records: each claim before it, the job's next fire time by ``soon`` (SAVE_DELAY on),
    no jitter, and the job's row in the file this definition's (``rows``: each job's
    committed fingerprint and pausing first).

    Per claim at 10,000 runs a second: the usual pass, every claim before ``before``,
    is told apart in C (``max``), then one loop with no call per job.
    """
    if not starts:
        return []
    if max(map(_AT, starts)) < before:
        return [
            job.id
            for job, _ in starts
            if not job.jitter
            and (following := job.next_fire) is not None
            and following <= soon
            and (row := rows.get(job.id)) is not None
            and row[0] == job.fingerprint
            and row[1] == job.paused
        ]
    # Some claim at or after it (short intervals, a pass cut short by its limit): by job.
    late = {job.id for job, at in starts if at >= before}
    return covered([(job, at) for job, at in starts if job.id not in late], before, soon, rows)


def claimed_since(
    job: Entry, first: datetime, before: datetime
) -> tuple[list[datetime], datetime | None]:
    """A start's view of a job whose row's next fire time ``first`` is earlier than the
    store's ``claimed_before`` time ``before``: the fire times claimed since the row was
    written (from ``first`` up to ``before``, at most MAX_CATCH_UP of them), and its next
    fire time (the first from ``before`` on; None: none)."""
    claimed, more, following = due_fire_times(job.trigger, first, before - _TICK)
    if more:  # (then its first from ``before - _TICK``, which may be before ``before``)
        following = next_fire_time(job.trigger, None, before)
    return claimed, following
