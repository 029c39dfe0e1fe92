"""The bench's start-up program: a first start writes every row of its state file, a
start on it afterwards, nothing changed, writes none (on both backends)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventsched._bench._jobstart import saved_start

pytestmark = pytest.mark.anyio


async def test_a_start_on_the_file_it_wrote_writes_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.sqlite")
    first = await saved_start(path, 40)
    assert first["rows"] == 40
    again = await saved_start(path, 40)
    assert again["rows"] == 0
    assert again["wall"] > 0
    assert again["cpu"] >= 0
