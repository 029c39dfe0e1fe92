"""docs/jobs.md lists exactly the keys each JOB_* event carries: jobs run in virtual time
into every case that adds keys, and the keys seen are compared with the tables."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest
from jobtools import new_scheduler
from virtualloop import BOTH_VIRTUAL

from eventsched import Event, EventType
from eventsched.testing import VirtualClock, capture_events

pytestmark = pytest.mark.anyio

JOBS_MD = Path(__file__).resolve().parents[2] / "docs" / "jobs.md"


def documented_keys() -> dict[str, set[str]]:
    """``{event type: keys}`` from the tables under "## Event payloads"."""
    text = JOBS_MD.read_text(encoding="utf-8").split("## Event payloads", 1)[1]
    tables: dict[str, set[str]] = {}
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        name = re.match(r"`(\w+)`", section)
        assert name is not None, section[:40]
        rows = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
        tables[name.group(1)] = set(rows)
    return tables


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_payload_tables_list_exactly_the_keys_emitted() -> None:
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    release = anyio.Event()

    async def ok() -> int:
        return 1

    async def broken() -> None:
        raise ValueError("no")

    async def hangs() -> None:
        await anyio.sleep(100)

    async def slow() -> None:
        await release.wait()

    scheduler.add_job(ok, "interval", seconds=1, id="ok")
    scheduler.add_job(broken, "date", id="broken", retries=1, retry_backoff=1)
    scheduler.add_job(hangs, "date", id="hangs", timeout=1)
    scheduler.add_job(slow, "interval", seconds=1, id="slow")  # max_instances misses
    scheduler.add_job(ok, "interval", seconds=1, id="strict", coalesce=False)  # misfire
    with capture_events(scheduler) as seen:
        async with scheduler:
            await anyio.sleep(3.5)
            clock.advance(10)  # the wall clock jumps: coalesced and misfire reports
            await anyio.sleep(2)
            scheduler.run_job("ok")
            await anyio.sleep(1)
            release.set()
            await anyio.sleep(1)
    emitted: dict[str, set[str]] = {}
    for event in seen:
        if str(event.type).startswith("job_"):
            emitted.setdefault(str(event.type), set()).update(event.data)
    missed = {e.data["reason"] for e in _of(seen, EventType.JOB_MISSED)}
    assert {"coalesced", "misfire", "max_instances"} <= missed  # every variant was seen
    assert {e.data["reason"] for e in _of(seen, EventType.JOB_FAILED)} == {"exception", "timeout"}
    documented = documented_keys()
    assert set(documented) == {member.name for member in EventType if member.startswith("job_")}
    for member, keys in documented.items():
        assert emitted[EventType[member].value] == keys, member


def _of(events: list[Event], event_type: EventType) -> list[Event]:
    return [event for event in events if event.type == event_type]
