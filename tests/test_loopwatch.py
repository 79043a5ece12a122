"""hilo.loopwatch: slow callbacks and blocking calls on the event loop are logged with their markers."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hilo import loopwatch


@pytest.fixture(autouse=True)
def _unwatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave the process unwatched after each test, as it was before."""
    monkeypatch.setattr(loopwatch, "_watching", False)


def test_a_callback_blocked_longer_than_the_threshold_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    # given
    async def scenario() -> None:
        loopwatch.watch(asyncio.get_running_loop(), 20)
        await asyncio.sleep(0.05)
        # when: a callback sleeps (a blocking call) for 60 ms, another takes 1 ms
        asyncio.get_running_loop().call_soon(time.sleep, 0.06)
        asyncio.get_running_loop().call_soon(time.sleep, 0.001)
        await asyncio.sleep(0.05)

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    # then: one line, with little of the time on a CPU
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(loopwatch.SLOW_CALLBACK)]
    assert len(lines) == 1 and "sleep" in lines[0], lines
    wall, cpu = (float(part.split(" ms")[0]) for part in lines[0].removeprefix("slow_callback ").split(", ")[:2])
    assert wall >= 60 and cpu < 30


def test_a_statement_on_the_loop_is_reported_and_one_in_a_thread_is_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    loopwatch.guard_engine(engine)

    def query(value: int) -> None:
        with engine.connect() as conn:
            conn.execute(text(f"SELECT {value}"))

    async def scenario() -> None:
        loopwatch.watch(asyncio.get_running_loop(), 20)
        # when
        query(1)
        await asyncio.to_thread(query, 2)

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    # then
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(loopwatch.BLOCKING_IO)]
    assert len(lines) == 1 and lines[0].startswith(f"{loopwatch.BLOCKING_IO} sql SELECT 1"), lines
    assert "test_loopwatch.py" in lines[0]
