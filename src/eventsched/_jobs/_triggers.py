"""Triggers: APScheduler 3's trigger classes, built from ``add_job`` arguments.

This is the only module that imports APScheduler. Its triggers are always given a
timezone, so that the local zone never decides, and are only asked for fire times
through ``get_next_fire_time(previous, now)``: APScheduler's own schedulers are not
used (``AsyncIOScheduler`` cannot run on trio).

A ``crontab=`` string means what crontab(5) means: day-of-week 0 and 7 are Sunday,
1-5 Monday to Friday, and when both day-of-month and day-of-week are restricted (neither
starts with ``*``) a day matching either fires. The keyword field ``day_of_week=``
keeps APScheduler's meaning (0 is Monday, 6 Sunday), as APScheduler documents it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final, cast

from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.combining import OrTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from apscheduler.util import astimezone  # type: ignore[import-untyped]

__all__ = [
    "BaseTrigger",
    "build_trigger",
    "crontab_day_of_week",
    "due_fire_times",
    "fingerprint",
    "next_fire_time",
    "set_run_date",
    "set_start",
    "to_timezone",
]

#: At most this many missed fire times are enumerated per job per wake-up (a 10 ms
#: interval down for a day would be 8.6 million); beyond it the report says ``more``.
MAX_CATCH_UP: Final = 10_000

_PLACEHOLDER = datetime(1970, 1, 1, tzinfo=UTC)
_INTERVAL_ARGS = frozenset(
    {"weeks", "days", "hours", "minutes", "seconds", "start_date", "end_date"}
)
_CRON_ARGS = frozenset(
    {
        "year",
        "month",
        "day",
        "week",
        "day_of_week",
        "hour",
        "minute",
        "second",
        "start_date",
        "end_date",
        "crontab",
    }
)
_DATE_ARGS = frozenset({"run_date"})
_ALLOWED: Final = {"interval": _INTERVAL_ARGS, "cron": _CRON_ARGS, "date": _DATE_ARGS}
_UNITS: Final = ("weeks", "days", "hours", "minutes", "seconds")
_NUMBERS: Final = (int, float)
_ZERO: Final = timedelta(0)
# What str() makes of the placeholder start of a deferred interval trigger, in every
# such job's fingerprint: made once (see fingerprint).
_PLACEHOLDER_TEXT: Final = str(_PLACEHOLDER)
# crontab(5) numbering: the index is cron's number (7 is Sunday again, handled below).
_CRON_DAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def to_timezone(value: str | tzinfo) -> tzinfo:
    """The timezone ``value`` names. :raises ValueError: not a usable timezone"""
    try:
        return cast(tzinfo, astimezone(value))
    except Exception as exc:
        raise ValueError(f"timezone={value!r} is not a usable timezone: {exc}") from None


def build_trigger(
    trigger: str | BaseTrigger, args: Mapping[str, Any], tz: tzinfo
) -> tuple[Any, str | None]:
    """Build the trigger; the second value says what is left to fix at schedule time.

    ``args`` is not changed (``add_job`` passes its own keyword arguments, uncopied).

    ``"start"``: an interval without ``start_date`` starts one interval after the job
    is scheduled; ``"now"``: a date job without ``run_date`` runs when scheduled. Both
    read the injectable clock then, never ``datetime.now()`` here.
    """
    if isinstance(trigger, BaseTrigger):
        if args:
            raise TypeError(
                f"trigger options {sorted(args)} were given with a trigger instance; "
                "set them on the trigger instead"
            )
        return trigger, None
    allowed = _ALLOWED.get(trigger) if isinstance(trigger, str) else None
    if allowed is None:
        raise ValueError(
            f"trigger={trigger!r} is not one of 'interval', 'cron', 'date' or an "
            "APScheduler 3 trigger instance"
        )
    if not allowed.issuperset(args):
        unknown = sorted(set(args) - allowed)
        raise TypeError(
            f"unknown option(s) {unknown} for trigger {trigger!r}; allowed: {sorted(allowed)}"
        )
    # For messages: as given. ``args`` itself is not changed below (the placeholder
    # start_date goes into a new dict, the cron branch pops from a copy), so no copy.
    given = args
    try:
        if trigger == "interval":
            _check_interval(args)
            if args.get("start_date") is None:
                args = {**args, "start_date": _PLACEHOLDER}
                return IntervalTrigger(timezone=tz, **args), "start"
            return IntervalTrigger(timezone=tz, **args), None
        if trigger == "cron":
            args = dict(args)
            crontab = args.pop("crontab", None)
            if crontab is None:
                return CronTrigger(timezone=tz, **args), None
            return _from_crontab(crontab, args, tz), None
        if args.get("run_date") is None:
            return DateTrigger(run_date=_PLACEHOLDER, timezone=tz), "now"
        return DateTrigger(timezone=tz, **args), None
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"invalid {trigger} trigger {given}: {exc}") from None
    except OverflowError as exc:
        raise ValueError(f"invalid {trigger} trigger {given}: {exc}") from None


def fingerprint(trigger: Any) -> str:
    """What a saved schedule must match to be resumed with this trigger.

    str() of an interval or cron trigger leaves out its start and end dates: a changed
    end_date must not keep a saved fire time (or a finished schedule).

    Interned: the jobs of one definition share one string (~120 bytes a job less), and
    a start-up that matches 50,000 saved rows compares each job's by identity, without
    reading the string, somewhere in memory, of every job (see :mod:`._resume`).
    """
    start = getattr(trigger, "start_date", "")
    return sys.intern(
        "|".join(
            (
                type(trigger).__name__,
                str(trigger),
                str(getattr(trigger, "timezone", "")),
                _PLACEHOLDER_TEXT if start is _PLACEHOLDER else str(start),
                str(getattr(trigger, "end_date", "")),
            )
        )
    )


def set_start(trigger: Any, first: datetime) -> None:
    """Fix a deferred interval trigger to start (first fire) at ``first``."""
    trigger.start_date = first.astimezone(trigger.timezone)


def interval_of(trigger: Any) -> timedelta:
    return cast(timedelta, trigger.interval)


def set_run_date(trigger: Any, when: datetime) -> None:
    """Fix a deferred date trigger ("run now") to ``when``."""
    trigger.run_date = when


def next_fire_time(trigger: Any, previous: datetime | None, now: datetime) -> datetime | None:
    """The trigger's next fire time after ``previous`` (None: its first from ``now``)."""
    return cast(datetime | None, trigger.get_next_fire_time(previous, now))


def due_fire_times(
    trigger: Any, first: datetime, horizon: datetime
) -> tuple[list[datetime], bool, datetime | None]:
    """The fire times from ``first`` up to ``horizon``, whether more were left out, and the
    first one after them (None: the trigger is exhausted)."""
    due = [first]
    more = False
    following = next_fire_time(trigger, first, horizon)
    while following is not None and following <= horizon:
        if len(due) >= MAX_CATCH_UP:
            more = True
            following = next_fire_time(trigger, None, horizon)
            break
        due.append(following)
        following = next_fire_time(trigger, following, horizon)
    return due, more, following


def _check_interval(args: Mapping[str, Any]) -> None:
    # APScheduler turns an interval of zero (or one that rounds to zero) into one
    # second without a word, and a negative one makes every fire time already past:
    # the scheduler would spin, reporting missed fire times as fast as it can.
    # One pass, a tuple of types rather than ``int | float`` (whose isinstance is
    # several times slower): this check cost as much as building the trigger.
    parts: dict[str, float] = {}
    for unit in _UNITS:
        value = args.get(unit)
        if value is not None:
            if type(value) is bool or not isinstance(value, _NUMBERS):
                raise TypeError(f"{unit}={value!r} must be a number")
            parts[unit] = value
    if timedelta(**parts) <= _ZERO:
        raise ValueError("the interval must be positive (at least a microsecond)")


def _from_crontab(crontab: str, fields: dict[str, Any], tz: tzinfo) -> Any:
    if not isinstance(crontab, str):
        raise TypeError(f"crontab={crontab!r} must be a string such as '*/5 * * * *'")
    if fields:
        raise ValueError(f"crontab= cannot be combined with cron fields {sorted(fields)}")
    values = crontab.split()
    if len(values) != 5:
        raise ValueError(
            f"Wrong number of fields in crontab={crontab!r}: got {len(values)}, expected 5 "
            "(minute hour day month day-of-week)"
        )
    minute, hour, day, month, day_of_week = values
    common = {"minute": minute, "hour": hour, "month": month, "timezone": tz}
    weekdays = crontab_day_of_week(day_of_week)
    if day.startswith("*") or day_of_week.startswith("*"):
        return CronTrigger(day=day, day_of_week=weekdays, **common)
    # Both restricted: crontab(5) fires when either matches; APScheduler's fields would
    # have to match both.
    return OrTrigger([CronTrigger(day=day, **common), CronTrigger(day_of_week=weekdays, **common)])


def crontab_day_of_week(field: str) -> str:
    """A crontab(5) day-of-week field in APScheduler's terms (day names, no numbers).

    crontab counts from Sunday (0 and 7 both Sunday); APScheduler from Monday. Names
    mean the same in both, so the days are listed by name; ranges and steps are
    expanded here, because a range of names crossing Sunday would wrap in APScheduler.

    :raises ValueError: not a crontab day-of-week field
    """
    if field == "*":
        return "*"
    days: set[int] = set()
    for item in field.lower().split(","):
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"day-of-week step {step_text!r} in {field!r} must be 1 or more")
            step = int(step_text)
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            start, _, end = span.partition("-")
            low, high = _cron_day(start, field), _cron_day(end, field)
            if low > high:
                raise ValueError(f"day-of-week range {span!r} in {field!r} runs backwards")
        elif slash:
            raise ValueError(f"day-of-week step needs a range or '*' in {field!r}")
        else:
            low = high = _cron_day(span, field)
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def _cron_day(text: str, field: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text in _CRON_DAYS:
        return _CRON_DAYS.index(text)
    raise ValueError(
        f"day-of-week {text!r} in {field!r} is not 0-7 (0 and 7 are Sunday) or a day name"
    )
