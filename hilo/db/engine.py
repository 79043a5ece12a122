"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as exc_module
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgresql:// URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while the ingest writer commits; NORMAL is durable in WAL mode
    # except for the last transactions on power loss, not on process crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("hilo_write") else "BEGIN")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Make the engine; a failing statement's error (and its log line) never shows the bound
    values, which can be password hashes, channel secrets or customers' messages."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; emit it ourselves (SQLAlchemy's
        # documented recipe). Writers take the write lock up front (IMMEDIATE), so a
        # transaction never fails half-way upgrading a read lock; readers never block writers.
        event.listen(engine, "begin", _sqlite_begin)

        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=20, hide_parameters=True)
    _ping_after_idle(engine)
    return engine


# A pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_after_idle(engine: Engine) -> None:
    """Check a connection that sat in the pool for a while before handing it out (a database
    restart or a proxy's idle timeout may have closed it); a busy connection goes out as is.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: one more round trip for every
    transaction, which under load is most of the round trips of a small one. A connection
    that fails its ping is discarded and the pool hands out another (PoolEvents.checkout).
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["hilo_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("hilo_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise exc_module.DisconnectionError(str(exc)) from exc
        if not alive:
            raise exc_module.DisconnectionError("the connection did not answer its ping")


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url, pool_size=pool_size)
        # Write transactions run on an engine view flagged "hilo_write" (see _sqlite_begin).
        self.sessions = sessionmaker(self.engine.execution_options(hilo_write=True), expire_on_commit=False)
        self.readers = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading (it may still commit small bookkeeping writes)."""
        with self.readers() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
