"""Scheduled jobs: triggers, planning, runs, the job store interface and its stores.

Map: ``_records`` (public records), ``_triggers`` (the only APScheduler importer),
``_planning`` (pure: what runs, what is missed), ``_entry`` (one scheduled job),
``_runs`` (a run and its ``JOB_*`` events), ``_retry`` (retries, :class:`Backoff`),
``_preview`` (next fire times), ``_timings`` (lateness and duration
histograms), ``_timeline`` (the heap of fire times), ``_resume`` (a start-up's bulk
take-up of saved rows), ``_store`` (the :class:`JobStore` protocol,
:class:`MemoryJobStore`), ``_sqlite`` (:class:`SQLiteJobStore`), ``_sync`` (batched
saves), ``_table`` and ``_scheduler`` (:class:`JobScheduler`), ``_facade`` (the job
methods of :class:`~eventsched.EventScheduler`).
"""

from __future__ import annotations

from .._lifecycle import State as JobSchedulerState
from ._facade import JobMethods
from ._planning import Miss, Plan, plan
from ._records import Job, JobStatistics, MissReason
from ._retry import Backoff
from ._runs import format_duration, summarize_result
from ._scheduler import JobScheduler
from ._sqlite import SQLiteJobStore, check_state_file
from ._store import JobStore, MemoryJobStore, SavedJob
from ._timings import JobTimings, RunHistogram

__all__ = [
    "Backoff",
    "Job",
    "JobMethods",
    "JobScheduler",
    "JobSchedulerState",
    "JobStatistics",
    "JobStore",
    "JobTimings",
    "MemoryJobStore",
    "Miss",
    "MissReason",
    "Plan",
    "RunHistogram",
    "SQLiteJobStore",
    "SavedJob",
    "check_state_file",
    "format_duration",
    "plan",
    "summarize_result",
]
