"""The connection pool on PostgreSQL: a connection that sat idle is checked before use, a busy one is not."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from hilo.db import engine as db_engine
from hilo.db.engine import Database
from tests.conftest import PG_URL


def _backend(database: Database) -> int:
    with database.read() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_closed_while_idle_is_replaced_before_use(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a pooled connection that was idle past the threshold, then closed by the server
    monkeypatch.setattr(db_engine, "PING_AFTER_IDLE_SECONDS", 0.0)
    database = Database(pg_database, pool_size=1)
    try:
        first = _backend(database)
        _terminate(first)
        # when: the next transaction checks a connection out
        second = _backend(database)
        # then: it ran on a new connection, and nothing failed
        assert second != first
    finally:
        database.dispose()


def test_a_busy_connection_is_handed_out_without_a_ping(pg_database: str) -> None:
    # given: a connection returned to the pool a moment ago, then closed by the server
    database = Database(pg_database, pool_size=1)
    try:
        first = _backend(database)
        _terminate(first)
        # when: the next transaction uses it at once (no ping: the pool trusts a fresh connection)
        with pytest.raises(Exception, match="terminat|closed|connection"):
            _backend(database)
        # then: the failure discarded the pool's connections, and the one after succeeds anew
        assert _backend(database) != first
    finally:
        database.dispose()
