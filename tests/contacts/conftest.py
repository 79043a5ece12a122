"""The fake Meta Graph API for the directory's WhatsApp tests, started once and reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.meta import FakeGraphAPI, running_fake_graph


@pytest.fixture(scope="session")
def _graph_server() -> Iterator[FakeGraphAPI]:
    with running_fake_graph() as graph:
        yield graph


@pytest.fixture
def fake_graph(_graph_server: FakeGraphAPI) -> FakeGraphAPI:
    _graph_server.reset()
    return _graph_server
