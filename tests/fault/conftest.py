"""Fixtures of the fault tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import PG_URL


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    """A PostgreSQL database of this test run's own, dropped afterwards."""
    name = f"hilo_fault_{os.getpid()}"
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and unreachable at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
