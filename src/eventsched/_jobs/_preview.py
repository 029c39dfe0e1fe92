"""Preview: a job's next fire times, computed without running or changing anything.

The trigger is asked as the scheduler task would ask it, on a copy where the trigger
still needs fixing at start (an interval without ``start_date`` begins one interval
after start, a date job without ``run_date`` runs at start): so a preview before start
assumes the scheduler starts now, and ignores a schedule the job store may hold (it is
read only at start). Jitter is left out (it is drawn as each fire time comes up). A
paused job's preview is the fire times it would have if resumed now.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Final

from .._validate import check_int
from ._entry import Entry
from ._triggers import interval_of, next_fire_time, set_run_date, set_start

__all__ = ["MAX_PREVIEW", "preview"]

#: Most fire times one preview lists.
MAX_PREVIEW: Final = 1000


def preview(job: Entry, now: datetime, count: int, *, scheduled: bool) -> list[datetime]:
    """Up to ``count`` next fire times of ``job`` (fewer when its trigger ends).

    :param scheduled: the scheduler is running, so ``job.next_fire`` is its next one
    """
    check_int("count", count, minimum=1, maximum=MAX_PREVIEW)
    trigger = job.trigger
    first: datetime | None
    if scheduled and not job.paused and job.deferred is None:
        first = job.next_fire
    else:
        if job.deferred is not None:
            trigger = copy.copy(trigger)  # the job's own stays deferred until start
            if job.deferred == "start":
                set_start(trigger, now + interval_of(trigger))
            else:
                set_run_date(trigger, now)
        first = next_fire_time(trigger, None, now)
    times: list[datetime] = []
    while first is not None and len(times) < count:
        times.append(first)
        first = next_fire_time(trigger, first, first)
    return times
