"""The roles-and-scopes migration on a database with users and keys in it, both backends.

Existing users and API keys must keep what they could do before it (supervisors and
admins their full view, keys both intake and full reports), the database must refuse
roles and scopes that do not exist afterwards, and downgrading and upgrading again must
work with analysts in the table.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from core import migrate

CREATED = datetime(2026, 11, 1, tzinfo=UTC)


def _roles_revision() -> tuple[str, str]:
    """This migration's revision and the one before it, whatever they are numbered."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    (script,) = [s for s in scripts.walk_revisions() if (s.doc or "").startswith("roles for")]
    return script.revision, script.down_revision


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'roles.db'}"
        return
    base = os.environ.get("AFTERCALL_TEST_DATABASE_URL")
    if not base:
        pytest.skip("set AFTERCALL_TEST_DATABASE_URL to run against PostgreSQL")
    # A database of its own: the suite's shared one is migrated to head once per session.
    url = make_url(base).set(database=f"{make_url(base).database}_roles")
    admin = create_engine(make_url(base).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}"'))
        connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def _rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(text(sql))]
    engine.dispose()
    return rows


def _insert(url: str, sql: str, **params: object) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), params)
    finally:
        engine.dispose()


def _add_user(url: str, name: str, role: str) -> None:
    _insert(
        url,
        "INSERT INTO users (username, password_hash, role, created_at, failed_logins)"
        " VALUES (:name, 'scrypt:x', :role, :created, 0)",
        name=name,
        role=role,
        created=CREATED,
    )


def _add_key(url: str, name: str, scopes: str | None = None) -> None:
    columns = ", scopes" if scopes is not None else ""
    values = ", :scopes" if scopes is not None else ""
    _insert(
        url,
        f"INSERT INTO api_keys (name, key_hash, prefix, created_at{columns})"
        f" VALUES (:name, :hash, 'ac_x', :created{values})",
        name=name,
        hash=name.ljust(64, "0"),
        created=CREATED,
        scopes=scopes,
    )


def test_existing_users_and_keys_keep_what_they_could_do(empty_database):
    url = empty_database
    revision, previous = _roles_revision()
    migrate.upgrade(url, previous)
    for name, role in [("sue", "supervisor"), ("ops", "admin"), ("odd", "viewer")]:
        _add_user(url, name, role)
    _add_key(url, "crm")
    _add_key(url, "bi")

    migrate.upgrade(url, revision)
    assert _rows(url, "SELECT username, role FROM users ORDER BY username") == [
        ("odd", "supervisor"),  # the old code showed every user everything
        ("ops", "admin"),
        ("sue", "supervisor"),
    ]
    assert _rows(url, "SELECT name, scopes FROM api_keys ORDER BY name") == [
        ("bi", "intake reports:full"),
        ("crm", "intake reports:full"),
    ]

    # From now on the database itself refuses what the code would never write.
    with pytest.raises(IntegrityError):
        _add_user(url, "root", "root")
    with pytest.raises(IntegrityError):
        _add_key(url, "wide")  # no scopes
    with pytest.raises(IntegrityError):
        _add_key(url, "both", "reports reports:full")
    _add_user(url, "ann", "analyst")
    _add_key(url, "pbx", "intake")

    migrate.downgrade(url, previous)
    assert "scopes" not in {c["name"] for c in _columns(url, "api_keys")}
    assert ("ann", "analyst") in _rows(url, "SELECT username, role FROM users")
    migrate.upgrade(url, revision)
    assert ("ann", "analyst") in _rows(url, "SELECT username, role FROM users")
    assert {scopes for (scopes,) in _rows(url, "SELECT scopes FROM api_keys")} == {
        "intake reports:full"
    }


def _columns(url: str, table: str) -> list[dict]:
    engine = create_engine(url)
    try:
        return inspect(engine).get_columns(table)
    finally:
        engine.dispose()
