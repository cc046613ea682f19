"""Migration 0009 on a database that already holds test calls: it finds them, takes them
out of every figure (the rollup included), and downgrade puts everything back.

The data is written at revision 0008 with that revision's columns, as a running
installation holds it: customers' calls, admins' test calls (the `aftercall-test-call:`
source call id and the `test_call` metadata flag, as dialer.trial_call marked them), and
calls carrying only one of the two marks, which were never test calls. On PostgreSQL
the rollup is on from the start, so its triggers counted the test calls as they came in.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, inspect, text

from core import migrate
from core.db import Database
from scoring import rollup
from scoring.report import ReportQuery, report

UTC_ZONE = ZoneInfo("UTC")
SCHEMA = "migration_0009"
DAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
PREFIX = "aftercall-test-call:"
ROLLUP_FUNCTIONS = (
    "report_daily_survey_requests_insert", "report_daily_survey_requests_delete",
    "report_daily_survey_requests_update", "report_daily_answers_insert",
    "report_daily_answers_delete", "report_daily_answers_update", "report_rollup_rebuild",
)  # fmt: skip

# (source call id, metadata, agent, language, state, nps, csat): 0008's rows.
CALLS = [
    ("crm-1", {}, "alice", "en", "completed", 9, 5),
    ("crm-2", {"product": "fiber"}, "alice", "es", "completed", 3, 2),
    ("crm-3", {}, "bob", "es", "partial", 7, None),
    ("crm-4", {}, None, "es", "completed", 10, 4),
    ("crm-5", {}, "bob", "en", "no_answer", None, None),
    # Admins' test calls: both marks.
    (f"{PREFIX}a1", {"test_call": True, "requested_by": "ada"}, None, "es", "completed", 0, 1),
    (f"{PREFIX}a2", {"test_call": True, "requested_by": "ada"}, None, "en", "partial", 4, None),
    (f"{PREFIX}a3", {"test_call": True, "requested_by": "ada"}, None, "en", "no_answer", None,
     None),
    # One mark only: customers' calls, whatever they look like.
    (f"{PREFIX}crm-6", {}, "carol", "en", "completed", 2, 1),
    ("crm-7", {"test_call": True}, "carol", "es", "completed", 8, 3),
    (f"{PREFIX}crm-8", {"test_call": False}, None, "es", "completed", 6, 2),
]  # fmt: skip
TEST_CALLS = {f"{PREFIX}a1", f"{PREFIX}a2", f"{PREFIX}a3"}
REACHED = ("completed", "partial")


@pytest.fixture
def url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the backend under test, of its own."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'migration.db'}"
        return
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    try:
        yield database_url + f"?options=-csearch_path%3D{SCHEMA}"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
        engine.dispose()


def fill_at_0008(url: str) -> None:
    """CALLS, written with revision 0008's columns (no ORM: the models are newer)."""
    meta = sa.MetaData()
    requests = sa.Table("survey_requests", meta, autoload_with=(engine := create_engine(url)))
    attempts = sa.Table("call_attempts", meta, autoload_with=engine)
    answers = sa.Table("answers", meta, autoload_with=engine)
    versions = sa.Table("survey_versions", meta, autoload_with=engine)
    with engine.begin() as connection:
        version_id = connection.execute(
            versions.insert().returning(versions.c.id),
            {"survey_name": "post-call", "version": 1, "content_sha256": "0" * 64,
             "definition": {}, "source_path": "", "created_at": DAY},
        ).scalar_one()  # fmt: skip
        for i, (source, extra, agent, language, state, nps, csat) in enumerate(CALLS):
            ended = DAY + timedelta(hours=i % 3, days=-(i % 2))
            queue = None if agent is None else "billing"
            request_id = connection.execute(
                requests.insert().returning(requests.c.id),
                {"phone": f"+1415555{i:04d}", "source_call_id": source, "agent": agent,
                 "queue": queue, "team": None,
                 "language": language, "call_ended_at": ended, "metadata": extra,
                 "survey_name": "post-call", "survey_version_id": version_id, "state": state,
                 "calls_placed": 1, "created_at": ended, "updated_at": ended},
            ).scalar_one()  # fmt: skip
            attempt_id = connection.execute(
                attempts.insert().returning(attempts.c.id),
                {"request_id": request_id, "number": 1, "status": "completed", "created_at": ended},
            ).scalar_one()
            for kind, value in (("nps", nps), ("csat", csat)):
                if value is None:
                    continue
                connection.execute(
                    answers.insert(),
                    {"request_id": request_id, "attempt_id": attempt_id,
                     "survey_version_id": version_id, "question_key": kind, "kind": kind,
                     "value": value, "keys": str(value), "received_at": ended,
                     "call_ended_at": ended, "agent": agent, "queue": queue,
                     "team": None, "survey_name": "post-call", "language": language},
                )  # fmt: skip
    engine.dispose()


def rollup_sums(url: str) -> dict[str, int]:
    """The rollup's counts over every day (compacted and pending), as SQL sees them."""
    names = ("received", "completed", "reached", "calls_placed", "nps_0", "nps_4", "csat_1")
    sums = ", ".join(f"coalesce(sum({name}), 0)" for name in names)
    engine = create_engine(url)
    with engine.connect() as connection:
        row = connection.execute(
            text(
                f"SELECT {sums} FROM (SELECT * FROM report_daily"
                " UNION ALL SELECT * FROM report_daily_delta) r"
            )
        ).one()
    engine.dispose()
    return dict(zip(names, row, strict=True))


def function_definitions(url: str) -> dict[str, str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = current_schema() AND p.proname = ANY(:names)"
            ),
            {"names": list(ROLLUP_FUNCTIONS)},
        ).all()
    engine.dispose()
    return dict(rows)


def figures(url: str, monkeypatch, *, tables: bool) -> dict:
    queries = [
        ReportQuery(time_zone=UTC_ZONE),
        ReportQuery(by=("agent",), time_zone=UTC_ZONE),
        ReportQuery(by=("language", "day"), time_zone=UTC_ZONE),
        ReportQuery(
            by=("survey",),
            since=DAY - timedelta(days=3),
            until=DAY + timedelta(days=3),
            time_zone=UTC_ZONE,
        ),
        ReportQuery(by=("meta:requested_by",), time_zone=UTC_ZONE),
    ]
    db = Database(url)
    try:
        with monkeypatch.context() as patch:
            if tables:
                patch.setattr(rollup, "covers", lambda *args: False)
            with db.session() as session:
                return {
                    str(query): [row.to_json() for row in report(session, query)]
                    for query in queries
                }
    finally:
        db.dispose()


def both_ways(url: str, monkeypatch, postgres: bool) -> list[dict]:
    ways = [figures(url, monkeypatch, tables=True)]
    if postgres:
        ways.append(figures(url, monkeypatch, tables=False))
        assert ways[1] == ways[0]  # the rollup agrees with the tables
    return ways


def marked(url: str) -> tuple[set[str], set[str]]:
    """Source call ids of the requests marked as test calls, and of their answers."""
    engine = create_engine(url)
    with engine.connect() as connection:
        requests = connection.scalars(
            text("SELECT source_call_id FROM survey_requests WHERE is_test")
        ).all()
        answers = connection.scalars(
            text(
                "SELECT DISTINCT r.source_call_id FROM answers a"
                " JOIN survey_requests r ON r.id = a.request_id WHERE a.is_test"
            )
        ).all()
    engine.dispose()
    return set(requests), set(answers)


def build_rollup_in_sql(url: str) -> None:
    """The rollup on in UTC and built by the database's own function, as that revision
    had it (today's scoring.rollup writes today's columns: 0018 added some)."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE report_rollup SET time_zone = 'UTC' WHERE id = 1"))
        connection.execute(text("SELECT report_rollup_rebuild()"))
    engine.dispose()


def switch_on(url: str) -> None:
    """What `aftercall db upgrade` does at head: 0018 leaves the rollup to be rebuilt."""
    db = Database(url)
    with db.session() as session:
        rollup.switch_on(session, UTC_ZONE)
    db.dispose()


def test_upgrade_marks_the_test_calls_and_takes_them_out_of_every_figure(url, monkeypatch):
    postgres = url.startswith("postgresql")
    migrate.upgrade(url, "0008")
    if postgres:
        build_rollup_in_sql(url)
    fill_at_0008(url)
    if postgres:
        before = rollup_sums(url)
        functions_0005 = function_definitions(url)
        assert set(functions_0005) == set(ROLLUP_FUNCTIONS)
        # 0005's triggers counted the test calls: 11 requests, the test calls' scores.
        assert before["received"] == len(CALLS)
        assert (before["nps_0"], before["nps_4"], before["csat_1"]) == (1, 1, 2)

    migrate.upgrade(url, "0009")

    assert marked(url) == (TEST_CALLS, {f"{PREFIX}a1", f"{PREFIX}a2"})
    index = next(i for i in inspect(create_engine(url)).get_indexes("answers")
                 if i["name"] == "ix_answers_report")  # fmt: skip
    assert index["column_names"] == ["call_ended_at", "agent", "kind", "value", "is_test"]
    if postgres:  # 0009's triggers took the test calls' figures out, without a rebuild
        after = rollup_sums(url)
        assert after == {
            "received": len(CALLS) - 3, "completed": before["completed"] - 1,
            "reached": before["reached"] - 2, "calls_placed": before["calls_placed"] - 3,
            "nps_0": 0, "nps_4": 0, "csat_1": 1,
        }  # fmt: skip
    migrate.upgrade(url)
    if postgres:
        switch_on(url)
    upgraded = both_ways(url, monkeypatch, postgres)
    total = upgraded[0][str(ReportQuery(time_zone=UTC_ZONE))]
    assert total[0]["received"] == len(CALLS) - len(TEST_CALLS)
    assert total[0]["nps_distribution"]["0"] == 0  # the only 0 was a test call's
    assert total[0]["csat_distribution"]["1"] == 1  # crm-6's; a1's is gone
    if postgres:
        assert rollup_sums(url) == after
        db = Database(url)
        with db.session() as session:
            rollup.compact(session)
        db.dispose()
        assert both_ways(url, monkeypatch, postgres) == upgraded

    # Down to 0009 (0018 leaves the rollup off), the rollup built there as 0009 had it,
    # then down to 0008: unmarking puts the test calls' figures back through 0009's
    # triggers.
    migrate.downgrade(url, "0009")
    if postgres:
        build_rollup_in_sql(url)
        assert rollup_sums(url) == after
    migrate.downgrade(url, "0008")

    engine = create_engine(url)
    for table in ("survey_requests", "answers"):
        assert "is_test" not in {c["name"] for c in inspect(engine).get_columns(table)}
    index = next(i for i in inspect(engine).get_indexes("answers")
                 if i["name"] == "ix_answers_report")  # fmt: skip
    assert index["column_names"] == ["call_ended_at", "agent", "kind", "value"]
    engine.dispose()
    if postgres:
        assert function_definitions(url) == functions_0005
        assert rollup_sums(url) == before  # the test calls are counted again, as at 0008

    migrate.upgrade(url)  # and up again: the same marks, the same figures
    if postgres:
        switch_on(url)
    assert marked(url) == (TEST_CALLS, {f"{PREFIX}a1", f"{PREFIX}a2"})
    assert both_ways(url, monkeypatch, postgres) == upgraded

    # Without the test calls at all, every figure is what it was with them.
    engine = create_engine(url)
    with engine.begin() as connection:
        ids = "SELECT id FROM survey_requests WHERE is_test"
        connection.execute(text(f"DELETE FROM answers WHERE request_id IN ({ids})"))
        connection.execute(text(f"DELETE FROM call_attempts WHERE request_id IN ({ids})"))
        connection.execute(text("DELETE FROM survey_requests WHERE is_test"))
    engine.dispose()
    assert both_ways(url, monkeypatch, postgres) == upgraded
