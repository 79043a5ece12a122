"""Shared fixtures: every test that touches storage runs on SQLite and on PostgreSQL.

PostgreSQL comes from HILO_TEST_POSTGRES_URL (default: the local server's `test`
database); each pytest-xdist worker gets a database of its own, migrated once and
emptied between tests. With CI set, an unreachable server fails the run instead of
skipping.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import text

from hilo.app import create_app
from hilo.clock import FrozenClock
from hilo.db.migrate import upgrade
from hilo.settings import Settings
from tests.fakes.meta import FakeGraphAPI, running_fake_graph
from tests.support import Api

PG_URL = os.environ.get("HILO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HILO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def fresh_redis(database: int) -> str:
    """The URL of a Redis database of a test's own on the shared Redis, emptied first
    (a failure in CI, where Redis must run; a skip elsewhere)."""
    url = f"{REDIS_URL.rsplit('/', 1)[0]}/{database}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).flushdb()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"Redis unavailable: {exc}")
    return url


def scratch_database_name(prefix: str) -> str:
    """A database name no other concurrent test run uses (one per process)."""
    return f"{prefix}_{os.getpid()}"


def create_scratch_database(name: str) -> str:
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and unreachable at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    with admin:
        _drop_orphans(admin, name.rsplit("_", 1)[0])
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_orphans(admin: psycopg.Connection[Any], prefix: str) -> None:
    """Drop the scratch databases of test processes that died (a killed run leaves them)."""
    pattern = re.compile(rf"^{re.escape(prefix)}_(\d+)$")
    for (existing,) in admin.execute("SELECT datname FROM pg_database").fetchall():
        found = pattern.match(existing)
        if found and not Path(f"/proc/{found.group(1)}").exists():
            admin.execute(f'DROP DATABASE IF EXISTS "{existing}" WITH (FORCE)')


def drop_scratch_database(name: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A migrated PostgreSQL database for this test process (each xdist worker has its own)."""
    name = scratch_database_name("hilo_test")
    url = create_scratch_database(name)
    upgrade(url)
    yield url
    drop_scratch_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "hilo.db"
    upgrade(f"sqlite:///{path}")
    return path


def empty_postgres(url: str) -> None:
    from sqlalchemy import create_engine

    from hilo.db.engine import normalize_url

    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        tables = (
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
            )
            .scalars()
            .all()
        )
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "hilo.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_database")
    empty_postgres(url)
    return url


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: small limits, no background worker, a fixed secret."""
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url="",
        secret_key="test-secret-key",
        base_url="http://testserver",
        default_region="ES",
        reopen_window_hours=72,
        max_body_bytes=64 * 1024,
        max_upload_bytes=1024 * 1024,
        run_worker=False,
        outbox_max_attempts=3,
        outbox_backoff_base=2,
        outbox_backoff_max=60,
        send_timeout=5,
        login_rate_limit=5,
        webhook_rate_limit=0,
        webhook_refusal_limit=20,
        secure_cookies=False,
        log_level="WARNING",
        # The fake providers listen on 127.0.0.1; production refuses loopback by default.
        outbound_allow_networks="127.0.0.0/8,::1/128",
    )
    return replace(settings, **overrides)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "data")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def app_client(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def api(app_client: TestClient) -> Api:
    """An API helper signed in as an administrator (by personal token)."""
    return Api.bootstrap(app_client)


def run_worker_once(client: TestClient) -> int:
    """Run one outbox pass in this thread (the app's own worker is off in tests)."""
    from hilo.outbox.dispatcher import OutboxDispatcher

    dispatcher = OutboxDispatcher(client.app.state.runtime)  # type: ignore[attr-defined]
    return asyncio.run(dispatcher.run_once())


@pytest.fixture
def worker(app_client: TestClient) -> Any:
    return lambda: run_worker_once(app_client)


@pytest.fixture(scope="session")
def _graph_server() -> Iterator[FakeGraphAPI]:
    with running_fake_graph() as graph:
        yield graph


@pytest.fixture
def fake_graph(_graph_server: FakeGraphAPI) -> FakeGraphAPI:
    """The fake Meta Graph API, started once and reset before each test."""
    _graph_server.reset()
    return _graph_server
