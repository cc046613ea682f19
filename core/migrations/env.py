"""Alembic environment: migrates the database named by the caller's Settings.

`aftercall db upgrade` passes the URL in the alembic Config (`sqlalchemy.url`), so the
same migrations run from a checkout, a wheel, or a release step.
"""

from alembic import context

from core.db import make_engine
from core.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Batch mode rebuilds a table by copying it and dropping the original, which
            # SQLite refuses while rows of other tables refer to it and foreign keys are
            # enforced; SQLite's own recipe for ALTER TABLE switches them off first
            # (outside a transaction, where the pragma takes effect) and checks after.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite can only change tables by copying them; batch mode does that.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows with broken references: {broken}")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
