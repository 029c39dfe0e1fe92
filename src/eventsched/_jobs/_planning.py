"""Planning: given a job's due fire times and now, what runs and what is missed, and why.

Pure: no event loop, no clock, no trigger. The scheduler task asks the trigger for
the due fire times and acts on the :class:`Plan`.

Misfire policy, per job:

* ``coalesce=True`` (the default): when several fire times are due at once (the loop
  was blocked, the process was down), they collapse into one run for the latest of
  them, however late; the others are missed (``coalesced``).
* ``coalesce=False``: each due fire time runs if it is at most ``misfire_grace_time``
  seconds late (None: however late); the rest are missed (``misfire``).
* A run that would exceed ``max_instances`` concurrent runs of the job is skipped and
  missed (``max_instances``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ._records import MissReason

__all__ = ["Miss", "Plan", "plan"]


@dataclass(frozen=True, slots=True)
class Miss:
    """Fire times of one job that did not become runs, for one reason."""

    reason: MissReason
    fire_times: tuple[datetime, ...]
    more: bool = False
    """More fire times were missed than were enumerated (see ``MAX_CATCH_UP``)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with a job's due fire times."""

    run: tuple[datetime, ...]
    """Fire times to run, oldest first."""
    missed: tuple[Miss, ...]
    """Fire times not to run, grouped by reason (in the order they were decided)."""


def plan(
    due: Sequence[datetime],
    now: datetime,
    *,
    coalesce: bool,
    misfire_grace_time: float | None,
    max_instances: int,
    running: int,
    more: bool = False,
) -> Plan:
    """Decide which of ``due`` (oldest first, at least one) run now.

    :param due: the due fire times (the first with its jitter, if any)
    :param now: the current wall time
    :param running: runs of the job in progress now
    :param more: fire times beyond ``due`` were due too but not enumerated
    """
    if not due:
        raise ValueError("plan() needs at least one due fire time")
    missed: list[Miss] = []
    candidates: list[datetime]
    if coalesce:
        candidates = [due[-1]]
        if len(due) > 1 or more:
            missed.append(Miss(MissReason.COALESCED, tuple(due[:-1]), more))
    else:
        candidates = []
        late: list[datetime] = []
        for at in due:
            lateness = (now - at).total_seconds()
            if misfire_grace_time is None or lateness <= misfire_grace_time:
                candidates.append(at)
            else:
                late.append(at)
        if late or more:
            missed.append(Miss(MissReason.MISFIRE, tuple(late), more))
    room = max(0, max_instances - running)
    if len(candidates) > room:
        missed.append(Miss(MissReason.MAX_INSTANCES, tuple(candidates[room:])))
        candidates = candidates[:room]
    return Plan(tuple(candidates), tuple(missed))
