"""The one engine/session setup that the web, worker and CLI processes share.

A `Database` owns an engine and a session factory for one URL. Units of work go through
`Database.session()`, which commits on success and rolls back on any error, so a
failure never leaves half-written rows behind; a unit of work that is one statement
(atomic by itself) may use `Database.single_statement()` instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Column,
    Connection,
    DateTime,
    Engine,
    bindparam,
    create_engine,
    event,
    exc,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zone type and hands back naive values; storing UTC and
    re-attaching it on the way out makes both backends return the same thing.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; aftercall stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys unless asked; WAL lets the web and worker processes
    # read while one of them writes.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# A pooled connection left unused for longer than this is pinged before it is handed
# out again (see _ping_if_idle).
PING_AFTER_IDLE_SECONDS = 2.0


def _ping_if_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only if it sat idle, instead of on every
    checkout (`pool_pre_ping`, a round trip per unit of work).

    A connection dies while it waits in the pool: PostgreSQL restarted or failed over,
    a proxy or firewall dropped it when idle. One checked in moments ago by a busy
    worker is almost always alive, and if the server went away in those moments the
    statement fails, SQLAlchemy invalidates the pool, and the webhook ends the call
    politely, as it would have while the server was down.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.pop("checked_in_at", None)
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return  # a new connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # Dead: so are the others pooled before it. The pool reconnects and retries.
            raise exc.InvalidatePoolError() from error


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url)
    _ping_if_idle(engine)
    return engine


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed if the block succeeds, rolled back if not."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A connection for a unit of work that is one statement (atomic by itself):
        no transaction around it, so no BEGIN and COMMIT round trips, each of which
        costs the busiest webhook as much CPU as a statement (bench.webhook_profile).
        The statement is durable when it returns, as a commit is.

        On SQLite, which has no data-modifying CTEs, such a unit takes two or three
        statements: there it is a transaction, which costs SQLite no round trip."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.begin() as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def one_off_session(url: str) -> Iterator[Session]:
    """One unit of work for a short-lived process (a CLI command): the engine and its
    connections are closed afterwards rather than left to the interpreter's exit."""
    database = Database(url)
    try:
        with database.session() as session:
            yield session
    finally:
        database.dispose()


def param_like(name: str, column: Column[Any]) -> BindParameter[Any]:
    """A bind parameter named `name` that takes `column`'s type: in a statement built
    once, a value that is not the column's own (a CASE branch, a coalesce) still binds
    as that type."""
    return bindparam(name, type_=column.type)
