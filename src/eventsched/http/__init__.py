"""An HTTP service for a running scheduler: Prometheus metrics, probes, JSON, a live page.

Not imported by ``import eventsched``: it loads Starlette, Hypercorn and
prometheus_client, which a scheduler without ``--http`` does not need::

    from eventsched.http import HttpService

    scheduler = EventScheduler()
    scheduler.add_service(HttpService(scheduler, "127.0.0.1:8000"))
"""

from __future__ import annotations

from ._address import HttpAddress, HttpAddressError, parse_address
from ._app import create_app, job_as_dict
from ._metrics import MAX_JOB_SERIES, SchedulerCollector, registry_for
from ._service import DEFAULT_HTTP_ADDRESS, HttpService

__all__ = [
    "DEFAULT_HTTP_ADDRESS",
    "MAX_JOB_SERIES",
    "HttpAddress",
    "HttpAddressError",
    "HttpService",
    "SchedulerCollector",
    "create_app",
    "job_as_dict",
    "parse_address",
    "registry_for",
]
