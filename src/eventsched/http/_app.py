"""The ASGI application: metrics, probes, JSON and the live page, over one scheduler.

Every route reads the scheduler on its own event loop (the server is a task in the
scheduler's task group), so a scrape sees the same figures ``statistics()`` returns.
Routes that change things (pause, resume, run) are refused unless a token was configured,
and then need ``Authorization: Bearer <token>``, compared in constant time.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import Job, JobBusyError, JobLookupError, SchedulerStateError
from ._metrics import MetricsSource, registry_for
from ._page import PAGE

__all__ = ["ControlSource", "create_app"]


class ControlSource(MetricsSource, Protocol):
    """What the app reads and changes: an :class:`~eventsched.EventScheduler` is one."""

    def pause_job(self, job_id: str) -> Job: ...

    def resume_job(self, job_id: str) -> Job: ...

    def run_job(self, job_id: str) -> Job: ...


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def job_as_dict(job: Job) -> dict[str, Any]:
    """A job record as JSON-ready data (times as ISO 8601 with their offset)."""
    return {
        "id": job.id,
        "name": job.name,
        "trigger": job.trigger,
        "next_fire_time": _iso(job.next_fire_time),
        "last_fire_time": _iso(job.last_fire_time),
        "paused": job.paused,
        "running": job.running,
        "runs": job.runs,
        "failures": job.failures,
        "max_instances": job.max_instances,
        "coalesce": job.coalesce,
        "misfire_grace_time": job.misfire_grace_time,
        "timeout": job.timeout,
    }


def create_app(scheduler: ControlSource, *, token: str | None = None) -> Starlette:
    """The ASGI app for ``scheduler``; ``token`` enables the routes that change things."""
    registry = registry_for(scheduler)
    expected = None if not token else token.encode()

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        # Answering at all is the check: the server runs on the scheduler's own loop, so
        # a handler that blocks the loop makes this time out, as a liveness probe should.
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        state = str(scheduler.state)
        if state == "running":
            return PlainTextResponse("ready\n")
        return PlainTextResponse(f"not ready: {state}\n", status_code=503)

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "state": str(scheduler.state),
                "events": scheduler.statistics().as_dict(),
                "jobs": scheduler.job_statistics().as_dict(),
            }
        )

    async def jobs(request: Request) -> Response:
        return JSONResponse([job_as_dict(job) for job in scheduler.get_jobs()])

    def refused(request: Request) -> Response | None:
        if expected is None:
            return JSONResponse(
                {"error": "changes are disabled: no HTTP token is configured (HTTP_TOKEN)"},
                status_code=403,
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            return JSONResponse(
                {"error": "a valid 'Authorization: Bearer <token>' header is required"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None

    async def change(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        job_id = request.path_params["job_id"]
        action = request.path_params["action"]
        act = {
            "pause": scheduler.pause_job,
            "resume": scheduler.resume_job,
            "run": scheduler.run_job,
        }.get(action)
        if act is None:
            return JSONResponse({"error": f"unknown action {action[:40]!r}"}, status_code=404)
        try:
            job = act(job_id)
        except JobLookupError:
            return JSONResponse({"error": f"no job with id {job_id!r}"}, status_code=404)
        except (JobBusyError, SchedulerStateError) as error:
            # run: max_instances runs in progress, or shutting down: try again later.
            return JSONResponse({"error": str(error)}, status_code=409)
        return JSONResponse(job_as_dict(job))

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": _CSP})

    routes = [
        Route("/", page),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/api/stats", stats),
        Route("/api/jobs", jobs),
        Route("/api/jobs/{job_id}/{action:str}", change, methods=["POST"]),
    ]
    return Starlette(routes=routes)


# The page loads nothing from elsewhere and runs only its own inline script.
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
