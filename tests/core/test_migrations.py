"""The alembic migrations are the schema: they build exactly what the models declare."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect
from sqlalchemy.exc import IntegrityError

from core import migrate
from core.db import make_engine, utcnow
from core.models import Base, SurveyAuditEntry, SurveyHead, SurveyVersion


def test_migrated_schema_matches_the_models(database_url):
    engine = create_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_empty_and_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    migrate.upgrade(url)
    assert migrate.current_revision(url) is not None
    migrate.downgrade(url, "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate.upgrade(url)
    engine = create_engine(url)
    assert {"survey_requests", "answers", "opt_outs"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_cli_upgrade_on_an_empty_database(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from aftercall.cli import main

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert f"database at revision {head}" in result.output


def test_0019_survey_tables_keep_their_rules_on_both_databases(database_url):
    """managed_surveys and survey_changes (core.survey_store): a change per revision, a
    known action, revisions from 1, versions that exist; and 0019 down and up again."""
    migrate.downgrade(database_url, "0018")
    engine = create_engine(database_url)
    assert not {"managed_surveys", "survey_changes"} & set(inspect(engine).get_table_names())
    engine.dispose()
    migrate.upgrade(database_url)

    engine = make_engine(database_url)
    now = utcnow()
    change = {"survey_name": "returns", "revision": 1, "action": "created",
              "changed_by": "alice", "changed_at": now, "summary": "made"}  # fmt: skip
    with engine.connect() as connection:
        transaction = connection.begin()
        version_id = connection.execute(
            insert(SurveyVersion).values(
                survey_name="returns",
                version=1,
                content_sha256="0" * 64,
                definition={},
                source_path="",
                created_at=now,
            )
        ).inserted_primary_key[0]
        head = {"name": "returns", "revision": 1, "current_version_id": version_id,
                "updated_by": "alice", "updated_at": now}  # fmt: skip
        connection.execute(insert(SurveyHead).values(head))
        connection.execute(insert(SurveyAuditEntry).values({**change, "version_id": version_id}))
        refused = [
            (SurveyAuditEntry, {**change, "version_id": version_id}),  # revision 1 twice
            (SurveyAuditEntry, {**change, "revision": 2, "action": "deleted", "version_id": version_id}),
            (SurveyAuditEntry, {**change, "revision": 3, "version_id": version_id + 99}),
            (SurveyAuditEntry, {**change, "survey_name": "nobody", "version_id": version_id}),
            (SurveyHead, {**head, "name": "zero", "revision": 0}),
            (SurveyHead, {**head, "name": "lost", "current_version_id": version_id + 99}),
        ]  # fmt: skip
        for model, values in refused:
            savepoint = connection.begin_nested()
            with pytest.raises(IntegrityError):
                connection.execute(insert(model).values(values))
            savepoint.rollback()
        transaction.rollback()
    engine.dispose()
