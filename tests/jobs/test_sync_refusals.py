"""StoreSync with a shared store: a refusal reaches the pass whose change was refused,
even when another save (the writer's) carried that change."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from eventsched import SavedJob
from eventsched._jobs._sync import StoreSync

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class RefusingStore:
    """Shared-store-like: refuses every change of the ids in ``refuse``."""

    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.saved: list[dict[str, SavedJob | None]] = []

    @property
    def location(self) -> str | None:
        return "test"

    async def lock(self) -> None:
        return None

    async def load(self) -> dict[str, SavedJob]:
        return {}

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        self.saved.append(dict(changes))
        return frozenset(self.refuse & set(changes))

    def current(self, job_id: str) -> SavedJob | None:
        return SavedJob("f", T0, T0 + timedelta(seconds=2))

    async def close(self) -> None:
        return None


async def opened() -> tuple[StoreSync, RefusingStore]:
    store = RefusingStore()
    sync = StoreSync(store)
    sync.adopt = lambda job_id, saved: None
    await sync.open()
    return sync, store


def planned(next_second: int) -> SavedJob:
    return SavedJob("f", T0, T0 + timedelta(seconds=next_second), (T0,))


async def test_a_change_refused_in_another_save_is_refused_to_the_next_flush() -> None:
    """The pass marked its change; the writer's flush took it and was refused: the
    pass's own flush (with nothing left to save) still says it was refused."""
    sync, store = await opened()
    store.refuse = {"j"}
    sync.mark("j", planned(1))  # the pass's claim (and the misses it planned)
    assert await sync.flush(urgent_only=True) == {"j"}  # the writer's save
    store.refuse = set()
    assert await sync.flush(urgent_only=True) == {"j"}  # the pass's: nothing to save
    assert await sync.flush(urgent_only=True) == frozenset()  # told once


async def test_a_change_planned_after_the_refusal_is_not_refused() -> None:
    sync, store = await opened()
    store.refuse = {"j"}
    sync.mark("j", planned(1))
    assert await sync.flush(urgent_only=True) == {"j"}
    store.refuse = set()
    sync.mark("j", planned(2))  # planned anew from the row taken up
    assert await sync.flush(urgent_only=True) == frozenset()
    assert store.saved[-1] == {"j": planned(2)}


async def test_a_run_ending_after_the_refusal_keeps_it_refused() -> None:
    """A run's end marked meanwhile is not a new plan: the pass still learns of it."""
    sync, store = await opened()
    store.refuse = {"j"}
    sync.mark("j", planned(1))
    assert await sync.flush(urgent_only=True) == {"j"}
    store.refuse = set()
    sync.mark("j", SavedJob("f", T0, T0 + timedelta(seconds=2)), ended=True)
    assert await sync.flush(urgent_only=True) == {"j"}


async def test_a_schedule_planned_anew_for_later_saving_is_not_refused() -> None:
    """A start's new or changed schedule is marked not urgent (the writer saves it):
    still planned anew after the refusal, so the next flush does not report it; a run
    that ended (also not urgent) leaves it refused."""
    sync, store = await opened()
    store.refuse = {"j", "k"}
    sync.mark("j", planned(1))
    sync.mark("k", planned(1))
    assert await sync.flush(urgent_only=True) == {"j", "k"}
    store.refuse = set()
    sync.mark("j", planned(2), urgent=False)  # planned anew, saved later
    sync.mark("k", planned(2), urgent=False, ended=True)  # a run ended
    assert await sync.flush(urgent_only=True) == {"k"}
