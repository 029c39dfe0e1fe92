"""Running a scheduler from the command line: the path the demo and ``eventsched run`` share.

Whatever can be judged before the start is judged first (the state file, the HTTP
address, whose socket the service binds in its constructor), so that a bad setting is
one line and exit code 2 with nothing started. The scheduler then runs on the chosen
backend until a signal, ``--duration`` or a stop: its own signal handling, watchdog and
summary apply, and the exit code says whether every event was accounted for.

The HTTP service is a :class:`~eventsched.Service` added to the scheduler, so it runs in
the scheduler's top-level task group and stops with it, under the same cancel scopes.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

import anyio
from loguru import logger

from .. import EventScheduler, JobStateError, Statistics
from .._exit import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, EXIT_SIGINT
from ._config import PROG, bad_setting

if TYPE_CHECKING:
    from ..http import HttpService
    from ._settings import Settings

__all__ = ["import_ahead", "launch", "run_scheduler"]

log = logger.bind(component="cli")


def _first_leaf(group: BaseExceptionGroup[Any]) -> Any:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _bad_state_file(path: str, error: JobStateError) -> int:
    # One line on stderr, whatever LOG_LEVEL says, like every other bad setting.
    print(bad_setting("state_file", path, str(error)), file=sys.stderr, flush=True)
    return EXIT_CONFIG


def _bad_store(problem: str) -> int:
    print(f"{PROG}: {problem}", file=sys.stderr, flush=True)
    return EXIT_CONFIG


def import_ahead(settings: Settings) -> None:
    """Import the event loop and the HTTP service now, before the scheduler is built.

    Their imports take up to a second under load; done between building the scheduler
    and starting it, they would delay the start behind the times its jobs were given
    (the demo's greeting, half a second after the build, would fire before the start).
    """
    import importlib

    importlib.import_module(settings.backend)
    if settings.http_address is not None:
        importlib.import_module("eventsched.http")
    if settings.tracing:
        # Without the extra this fails here too: launch() reports it, in one line.
        with contextlib.suppress(ImportError):
            importlib.import_module("eventsched.tracing")


def launch(settings: Settings, scheduler: EventScheduler) -> int:
    """Check what can be checked, then run ``scheduler``; return the exit code."""
    from .._jobs import SQLiteJobStore, check_state_file
    from ._stateurl import apply_state_url

    problem = apply_state_url(settings, scheduler)
    if problem is not None:
        return _bad_store(problem)
    sqlite = isinstance(scheduler.jobs.store, SQLiteJobStore)
    state_file = scheduler.jobs.state_file
    if state_file is not None and sqlite:
        # Judged before anything starts, rather than after a start-up and a summary.
        try:
            check_state_file(state_file)
        except JobStateError as error:
            return _bad_state_file(state_file, error)
    if settings.tracing and not _instrument(scheduler):
        return EXIT_CONFIG
    http: HttpService | None = None
    if settings.http_address is not None:
        # Imported only when asked for: Starlette, Hypercorn and prometheus_client.
        from ..http import HttpAddressError, HttpService

        token = settings.http_token
        try:
            # Binds its socket now: a port in use is found before anything starts.
            http = HttpService(
                scheduler,
                settings.http_address,
                token=None if token is None else token.get_secret_value(),
            )
        except HttpAddressError as error:
            print(f"{PROG}: {error}", file=sys.stderr, flush=True)
            return EXIT_CONFIG
        scheduler.add_service(http)
    bad_state: JobStateError | None = None
    try:
        stats = anyio.run(run_scheduler, scheduler, settings, http, backend=settings.backend)
    except* JobStateError as group:
        bad_state = _first_leaf(group)
    except* (SystemExit, KeyboardInterrupt) as group:
        # A handler or job raised it and the scheduler stopped gracefully (see
        # UserBaseExceptionError): end as it asked, not as an exception group, and
        # KeyboardInterrupt as Ctrl+C does, with no traceback.
        leaf = _first_leaf(group)
        raise (SystemExit(EXIT_SIGINT) if isinstance(leaf, KeyboardInterrupt) else leaf) from None
    finally:
        if http is not None:
            http.close()  # already closed if it ran; not if the run failed to start
    if bad_state is not None and not sqlite:
        # A shared store (STATE_URL): unreachable, refused, or its tables too new.
        return _bad_store(str(bad_state))
    if bad_state is not None:
        # The file changed between the check above and the run.
        return _bad_state_file(str(state_file), bad_state)
    return EXIT_OK if stats.unaccounted == 0 else EXIT_ERROR


def _instrument(scheduler: EventScheduler) -> bool:
    """``TRACING``: trace ``scheduler`` (unless its module already did); False, with the
    one line said, when it cannot be."""
    try:
        from ..tracing import instrument, is_instrumented
    except ImportError:
        problem = "needs the otel extra: pip install 'eventsched[otel]'"
        print(bad_setting("tracing", True, problem), file=sys.stderr, flush=True)
        return False
    from opentelemetry import trace

    if not is_instrumented(scheduler):
        instrument(scheduler)
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        # Nobody set a provider (neither the application's module nor
        # opentelemetry-instrument): spans would be made and go nowhere.
        log.warning(
            "TRACING is on but no OpenTelemetry tracer provider is set: spans go nowhere "
            "(set one in your module, or run under opentelemetry-instrument)"
        )
    return True


async def _stop_after(scheduler: EventScheduler, seconds: float) -> None:
    await anyio.sleep(seconds)
    scheduler.stop(reason=f"duration of {seconds:g}s reached")


async def run_scheduler(
    scheduler: EventScheduler, settings: Settings, http: HttpService | None = None
) -> Statistics:
    """Run ``scheduler`` until a signal, ``--duration`` or a stop; return the final figures."""
    log.bind(backend=settings.backend).info(
        "Starting the scheduler application... (backend {})", settings.backend
    )
    if http is not None:
        changes = "need the token" if settings.http_token is not None else "are off (no token)"
        log.info("HTTP service on {}; job changes over HTTP {}", http.url, changes)
    async with anyio.create_task_group() as tg:
        if settings.duration is not None:
            tg.start_soon(_stop_after, scheduler, settings.duration)
        stats = await scheduler.run()  # its summary includes the job runs
        tg.cancel_scope.cancel()
    return stats
