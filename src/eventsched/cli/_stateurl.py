"""``STATE_URL``: a PostgreSQL job store that several processes share, from the command line.

Judged before anything starts, each problem one line (exit code 2): ``STATE_FILE`` given
too, an application that chose its own store, psycopg missing (the ``postgres``
extra), a URL that is not a ``postgresql://`` one. The URL is never shown with its
password. Reaching the server is judged when the scheduler starts (one line too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import JobStateError, MemoryJobStore

if TYPE_CHECKING:
    from .. import EventScheduler
    from ._settings import Settings

__all__ = ["apply_state_url"]

_FLAG = "STATE_URL (--state-url)"


def apply_state_url(settings: Settings, scheduler: EventScheduler) -> str | None:
    """Give ``scheduler`` the store ``STATE_URL`` names; the problem, in one line, if not."""
    url = settings.state_url
    if url is None:
        return None
    if settings.state_file is not None:
        return f"STATE_FILE (--state-file) and {_FLAG}: give one of them, not both"
    own = scheduler.jobs.store
    if not isinstance(own, MemoryJobStore):
        return (
            f"{_FLAG}: the application already keeps its jobs in {own.location} "
            "(configure_jobs); leave it out"
        )
    try:
        import psycopg  # noqa: F401 (only to find out whether the extra is installed)
    except ImportError:
        return f"{_FLAG} needs psycopg: pip install 'eventsched[postgres]'"
    from .._postgres import PostgresJobStore

    try:
        store = PostgresJobStore(url)
    except JobStateError as error:
        return str(error)
    scheduler.configure_jobs(store=store)
    return None
