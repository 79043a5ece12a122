"""Fixtures for routing and SLA tests: a desk on both databases, with a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hilo.clock import FrozenClock
from tests.routing.desk import Desk
from tests.support import Api


@pytest.fixture
def desk(api: Api, clock: FrozenClock) -> Iterator[Desk]:
    desk = Desk(api, clock)
    yield desk
    desk.close()
