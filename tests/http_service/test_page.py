"""The live page in a real headless browser: it renders the figures the API gives."""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile

import anyio
import pytest

from eventsched import Event, EventScheduler
from eventsched.http import HttpService

from ._client import request

pytestmark = pytest.mark.anyio

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str:
    for name in _BROWSERS:
        if (path := shutil.which(name)) is not None:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("no headless browser in CI: .ci/run installs Debian's chromium")
    pytest.skip("needs a headless browser: apt-get install chromium")


def _cell(dom: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    assert found is not None, f"no element {element_id} in the page"
    return html.unescape(found.group(1))


async def test_page_renders_the_figures_of_the_api() -> None:
    """Chromium loads /, runs its script, and shows what /api/stats and /api/jobs say."""
    browser = _browser()
    scheduler = EventScheduler(queue_size=50)
    service = HttpService(scheduler, "127.0.0.1:0")
    scheduler.add_service(service)
    done = anyio.Event()
    count = 0

    @scheduler.on("work")
    async def work(event: Event) -> None:
        nonlocal count
        count += 1
        if count == 3:
            done.set()
        if event.data["i"] == 0:
            raise ValueError("one failure to show")

    async def job() -> None:
        pass

    scheduler.add_job(job, "interval", seconds=600, id="<i>ten minutes</i>")
    with tempfile.TemporaryDirectory() as profile, anyio.fail_after(60):
        async with scheduler:
            for i in range(3):
                await scheduler.emit("work", {"i": i})
            await done.wait()
            stats = (await request(service.port, "/api/stats")).json()["events"]
            result = await anyio.run_process(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    f"--user-data-dir={profile}",
                    "--virtual-time-budget=5000",
                    "--dump-dom",
                    service.url,
                ],
                check=False,
            )
    dom = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert _cell(dom, "state") == "running"
    assert _cell(dom, "queue") == f"{stats['still_queued']} / 50"
    assert _cell(dom, "outcomes") == f"{stats['handled']} / {stats['failed']} / 0"
    assert stats["failed"] == 1
    assert _cell(dom, "unaccounted") == "0"
    assert _cell(dom, "status").startswith("updated")
    # A job id that looks like markup is shown as text, never parsed as HTML.
    assert "&lt;i&gt;ten minutes&lt;/i&gt;" in dom
    assert "<i>ten minutes</i>" not in dom
