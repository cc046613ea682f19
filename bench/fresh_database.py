"""An empty, migrated database for each measurement (shared by the benchmarks)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from core import migrate


def reset(url: str) -> None:
    engine = create_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        Path(engine.url.database).unlink(missing_ok=True)
    engine.dispose()
    migrate.upgrade(url)
