"""The daily rollup gives exactly the figures of the full aggregation, whatever happened.

Random histories of requests and answers (inserted, moved through states, deleted,
anonymised; some of them admins' test calls, which no figure counts, and some marked or
unmarked as test calls afterwards, as migration 0009 does), then the same reports read
from the rollup and from the raw tables, before and after compaction and after a rebuild
in another time zone. Callbacks and in-call surveys mix in them, and so do calls and
texts (requests of every channel, with their conversations or without) and answers
keyed, spoken, texted or of unknown input: the rollup is keyed by mode and channel and
counts the spoken share (migration 0018), so reports grouped or filtered by either, and
the spoken share, must read as the tables do (the text counters, which the rollup leaves
to the conversations, included), and the reports by mode and by channel must add up to
the total. On both databases: SQLite keeps the same rollup with triggers of its own and
local days from a table (migration 0017).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select, update

from core.models import (
    CES_COUNTERS,
    CSAT_COUNTERS,
    FUNNEL_COUNTERS,
    NPS_COUNTERS,
    ROLLUP_COUNTERS,
    ROLLUP_KEYS,
    STORED_COUNTERS,
    SUPPRESSION_COUNTERS,
    SUPPRESSION_REASONS,
    Answer,
    CallAttempt,
    Channel,
    RequestState,
    SmsConversation,
    Suppression,
    SurveyMode,
    SurveyRequest,
    report_daily,
    report_daily_delta,
    report_daily_teams,
    report_rollup_days,
)
from scoring import rollup
from scoring.report import ReportQuery, _Plan, group_values, report, spoken_share, totals
from tests.scoring.test_report import _version_id, add

UTC_ZONE, NEW_YORK = ZoneInfo("UTC"), ZoneInfo("America/New_York")
START = datetime(2026, 10, 28, tzinfo=UTC)  # the US leaves summer time on 1 November
STATES = list(RequestState)
# How a conversation may have closed (None: still open), as sms.conversation sets it.
OUTCOMES = [None, "completed", "abandoned", "expired", "undelivered", "opted_out"]


@pytest.fixture
def pg(runtime):
    """The runtime, on either database (the name is older than SQLite's rollup)."""
    yield runtime
    with runtime.db.session() as session:  # leave it as the other tests expect it
        rollup.switch_on(session, UTC_ZONE)


def midnight(day: int, zone: ZoneInfo) -> datetime:
    return datetime.combine((START + timedelta(days=day)).date(), datetime.min.time(), zone)


def queries(zone: ZoneInfo) -> list[ReportQuery]:
    since, until = midnight(1, zone), midnight(6, zone)
    return [
        ReportQuery(time_zone=zone),
        ReportQuery(by=("agent",), time_zone=zone),
        ReportQuery(by=("agent", "day"), since=since, until=until, time_zone=zone),
        ReportQuery(by=("team", "week"), time_zone=zone, queue="billing"),
        ReportQuery(by=("survey", "language", "month"), since=since, time_zone=zone),
        ReportQuery(by=("queue",), until=until, agent="bob", time_zone=zone),
        ReportQuery(by=("mode", "channel"), since=since, until=until, time_zone=zone),
        ReportQuery(by=("agent", "day"), time_zone=zone, mode="in_call"),
        ReportQuery(by=("channel", "week"), time_zone=zone, team="north"),
        ReportQuery(by=("mode",), time_zone=zone, channel="sms"),
        ReportQuery(by=("agent", "channel"), since=since, time_zone=zone, mode="callback"),
    ]


def figures(session, query: ReportQuery, *, raw: bool, monkeypatch) -> list[dict]:
    with monkeypatch.context() as patch:
        if raw:
            patch.setattr(rollup, "covers", lambda *args: False)
        assert _Plan(session, query).from_rollup is not raw, query
        return [row.to_json() for row in report(session, query)]


def values(session, query: ReportQuery, *, raw: bool, monkeypatch) -> dict[str, list[str]]:
    with monkeypatch.context() as patch:
        if raw:
            patch.setattr(rollup, "covers", lambda *args: False)
        names = ("agent", "queue", "team", "survey", "language", "mode", "channel")
        return group_values(session, names, query)


def spoken(session, query: ReportQuery, *, raw: bool, monkeypatch) -> tuple[int, int]:
    with monkeypatch.context() as patch:
        if raw:
            patch.setattr(rollup, "covers", lambda *args: False)
        share = spoken_share(session, query)
        return share.answers, share.spoken


def assert_same(runtime, zone, monkeypatch) -> None:
    with runtime.db.session() as session:
        for query in queries(zone):
            assert figures(session, query, raw=False, monkeypatch=monkeypatch) == figures(
                session, query, raw=True, monkeypatch=monkeypatch
            ), query
            assert values(session, query, raw=False, monkeypatch=monkeypatch) == values(
                session, query, raw=True, monkeypatch=monkeypatch
            ), query
            assert spoken(session, query, raw=False, monkeypatch=monkeypatch) == spoken(
                session, query, raw=True, monkeypatch=monkeypatch
            ), query
        # The modes partition the requests: by mode, the total.
        everything = ReportQuery(time_zone=zone)
        assert _Plan(session, everything).from_rollup
        assert spoken_share(session, everything).answers > 0
        total = totals(report(session, everything)).to_json()
        by_mode = report(session, ReportQuery(by=("mode",), time_zone=zone))
        assert {row.group["mode"] for row in by_mode} <= {mode.value for mode in SurveyMode}
        assert totals(by_mode).to_json() == total
        # So do the channels.
        by_channel = report(session, ReportQuery(by=("channel",), time_zone=zone))
        assert {row.group["channel"] for row in by_channel} <= {c.value for c in Channel}
        assert totals(by_channel).to_json() == total


def random_history(runtime, rng: random.Random, size: int) -> None:
    with runtime.db.session() as session:
        first = session.scalar(select(func.coalesce(func.max(SurveyRequest.id), 0))) + 1
        for i in range(first, first + size):
            answers = []
            for key, kind, scale in (("nps", "nps", 10), ("csat", "csat", 5), ("ces", "ces", 7),
                                     ("callback", "yesno", 1)):  # fmt: skip
                if rng.random() < 0.7:
                    # Values off the scale too: the database stores them, reports skip them.
                    answers.append((key, kind, rng.randint(-1, scale + 1)))
            request = add(
                session, i, agent=rng.choice(["alice", "bob", None]),
                team=rng.choice(["north", "south"]),
                ended=START + timedelta(minutes=rng.randrange(8 * 24 * 60)),
                state=rng.choice(STATES), attempts=rng.randint(1 if answers else 0, 3), answers=answers,
                reason=rng.choice([None, *SUPPRESSION_REASONS]), is_test=rng.random() < 0.2,
            )  # fmt: skip
            request.queue = rng.choice(["billing", None])
            request.language = rng.choice(["en", "es"])
            request.mode = rng.choice(list(SurveyMode))
            if request.mode is SurveyMode.IN_CALL and rng.random() < 0.3:
                request.agent = request.queue = request.team = None  # unattributed
            request.channel = rng.choice(list(Channel))
            if request.channel.texts and rng.random() < 0.8:  # its first text went out
                session.add(
                    SmsConversation(
                        request_id=request.id, phone=request.phone, sender="+15005550006",
                        survey_version_id=_version_id(session), language="en",
                        expires_at=request.call_ended_at, outcome=rng.choice(OUTCOMES),
                    )
                )  # fmt: skip
        session.flush()
        for answer in session.scalars(select(Answer).where(Answer.request_id >= first)):
            # How it was given (None: a comment's, or stored before spoken answers).
            answer.input = rng.choice([None, "keys", "speech", "text"])
            # Stored before modes and channels were copied: a callback's, a call's.
            if answer.mode == SurveyMode.CALLBACK and rng.random() < 0.3:
                answer.mode = None
            if answer.channel == Channel.VOICE and rng.random() < 0.3:
                answer.channel = None
    with runtime.db.session() as session:  # the dialer and the call flow move them on
        ids = session.scalars(select(SurveyRequest.id)).all()
        for request_id in rng.sample(ids, len(ids) // 2):
            request = session.get(SurveyRequest, request_id)
            request.state = rng.choice(STATES)
            request.calls_placed += rng.randint(0, 2)
        session.execute(  # one set-based update of many rows
            update(SurveyRequest)
            .where(SurveyRequest.state == RequestState.NO_ANSWER)
            .values(state=RequestState.EXPIRED, suppression_reason="validity_expired")
        )
        session.execute(update(SurveyRequest).values(phone="+10000000000"))  # anonymised
        # Marked as test calls after the fact, and unmarked (set-based, answers with them).
        for mark, chosen in ((True, rng.sample(ids, len(ids) // 8)),
                             (False, rng.sample(ids, len(ids) // 8))):  # fmt: skip
            session.execute(
                update(SurveyRequest).where(SurveyRequest.id.in_(chosen)).values(is_test=mark)
            )
            session.execute(
                update(Answer).where(Answer.request_id.in_(chosen)).values(is_test=mark)
            )
        for answer in session.scalars(select(Answer).where(Answer.kind == "csat")).all()[::3]:
            answer.value = rng.randint(1, 5)
        for answer in session.scalars(select(Answer).where(Answer.kind == "nps")).all()[::4]:
            answer.input = rng.choice([None, "keys", "speech", "text"])  # a re-ask, say
        # Mode and channel changed set-based, requests and their answers' copies alike.
        for table in (SurveyRequest, Answer):
            column = table.id if table is SurveyRequest else table.request_id
            session.execute(update(table).where(column.in_(ids[::7])).values(mode="callback"))
            session.execute(update(table).where(column.in_(ids[::5])).values(channel="sms"))
    with runtime.db.session() as session:
        doomed = rng.sample(ids, len(ids) // 10)
        for table in (Answer, CallAttempt, SmsConversation):
            session.execute(delete(table).where(table.request_id.in_(doomed)))
        session.execute(delete(SurveyRequest).where(SurveyRequest.id.in_(doomed)))


@pytest.mark.parametrize("seed", range(4))
def test_rollup_equals_the_full_aggregation(pg, monkeypatch, seed):
    random_history(pg, random.Random(seed), size=60)
    with pg.db.session() as session:
        assert session.scalar(select(func.count()).select_from(report_daily_delta)) > 0
        (everything,) = report(session, ReportQuery())
        assert everything.texted > 0 and everything.texted < everything.received
    assert_same(pg, UTC_ZONE, monkeypatch)  # report_daily empty, deltas only

    with pg.db.session() as session:
        assert rollup.compact(session) > 0
    with pg.db.session() as session:
        assert session.scalar(select(func.count()).select_from(report_daily_delta)) == 0
    assert_same(pg, UTC_ZONE, monkeypatch)  # compacted

    random_history(pg, random.Random(seed + 100), size=20)  # more changes on top
    assert_same(pg, UTC_ZONE, monkeypatch)
    with pg.db.session() as session:
        rollup.compact(session)
        rollup.compact(session)  # nothing left to fold: a no-op
    assert_same(pg, UTC_ZONE, monkeypatch)


def test_compaction_keeps_one_row_per_key_and_day(pg, monkeypatch):
    random_history(pg, random.Random(9), size=80)
    with pg.db.session() as session:
        rollup.compact(session)
    random_history(pg, random.Random(10), size=10)
    with pg.db.session() as session:  # SQLite: one writer at a time, each committed
        rollup.compact(session)
    with pg.db.session() as session:
        keys = [report_daily.c[name] for name in ROLLUP_KEYS]
        duplicated = session.execute(select(*keys).group_by(*keys).having(func.count() > 1)).all()
    assert duplicated == []
    assert_teams_are_agents_summed(pg)


def assert_teams_are_agents_summed(runtime) -> None:
    keys = tuple(name for name in ROLLUP_KEYS if name != "agent")

    def rows(table) -> set[tuple]:
        statement = select(
            *(table.c[k] for k in keys), *(func.sum(table.c[n]) for n in STORED_COUNTERS)
        ).group_by(*(table.c[k] for k in keys))
        with runtime.db.session() as session:
            return {tuple(row) for row in session.execute(statement)}

    assert rows(report_daily_teams) == rows(report_daily)


def test_the_level_without_agents_follows_compaction_and_rebuilds(pg, monkeypatch):
    random_history(pg, random.Random(21), size=40)
    with pg.db.session() as session:
        rollup.compact(session)
    assert_teams_are_agents_summed(pg)
    random_history(pg, random.Random(22), size=10)
    with pg.db.session() as session:
        rollup.compact(session)
    assert_teams_are_agents_summed(pg)
    with pg.db.session() as session:
        rollup.switch_on(session, NEW_YORK)
    assert_teams_are_agents_summed(pg)
    assert_same(pg, NEW_YORK, monkeypatch)


def test_switching_time_zone_rebuilds_and_reports_follow(pg, monkeypatch):
    random_history(pg, random.Random(3), size=60)
    with pg.db.session() as session:
        assert rollup.switch_on(session, NEW_YORK) is True
        assert rollup.switch_on(session, NEW_YORK) is False  # already built
    assert_same(pg, NEW_YORK, monkeypatch)
    random_history(pg, random.Random(4), size=20)  # triggers now file New York days
    assert_same(pg, NEW_YORK, monkeypatch)
    with pg.db.session() as session:
        # Reports in another zone cannot use New York's days: they aggregate directly.
        assert not _Plan(session, ReportQuery(by=("day",), time_zone=UTC_ZONE)).from_rollup


def test_reports_it_cannot_answer_exactly_go_to_the_tables(pg):
    with pg.db.session() as session:
        ok = ReportQuery(by=("agent",), since=midnight(1, UTC_ZONE), until=midnight(2, UTC_ZONE))
        assert _Plan(session, ok).from_rollup
        for query in (
            ReportQuery(since=midnight(1, UTC_ZONE) + timedelta(hours=1)),  # not a day edge
            ReportQuery(by=("meta:product",)),  # metadata is not rolled up
            ReportQuery(by=("mode",), since=midnight(1, UTC_ZONE) + timedelta(hours=1)),
            ReportQuery(time_zone=NEW_YORK),  # not the rollup's zone
        ):
            assert not _Plan(session, query).from_rollup, query
        for query in (  # the survey mode and channel are keys of the rollup (0018)
            ReportQuery(by=("mode",)),
            ReportQuery(by=("agent",), mode="in_call"),
            ReportQuery(by=("channel",)),
            ReportQuery(by=("agent",), channel="sms"),
        ):
            assert _Plan(session, query).from_rollup, query
        rollup.switch_off(session)
        assert not _Plan(session, ok).from_rollup


def test_switched_off_rollup_is_not_kept(pg):
    with pg.db.session() as session:
        rollup.switch_off(session)
    random_history(pg, random.Random(5), size=10)
    with pg.db.session() as session:
        assert session.scalar(select(func.count()).select_from(report_daily_delta)) == 0
        assert rollup.compact(session) == 0


def test_rollup_columns_cover_every_suppression_reason():
    # A new reason needs a new rollup column (and a migration) before it can be reported.
    assert tuple(reason.value for reason in Suppression) == SUPPRESSION_REASONS
    # scoring.report reads the summed counters by position, in this order.
    assert (*NPS_COUNTERS, *CSAT_COUNTERS, *CES_COUNTERS, *FUNNEL_COUNTERS,
                               *SUPPRESSION_COUNTERS) == ROLLUP_COUNTERS  # fmt: skip


def test_the_cron_job_compacts(pg, monkeypatch):
    from core.runtime import use_worker_runtime
    from scoring.jobs import compact_rollup, tidy_rollup

    random_history(pg, random.Random(11), size=10)
    use_worker_runtime(pg)
    try:
        assert compact_rollup() > 0
        assert compact_rollup() == 0
        assert tidy_rollup() is True
    finally:
        use_worker_runtime(None)
    assert_same(pg, UTC_ZONE, monkeypatch)


def test_db_upgrade_switches_the_rollup_to_the_report_time_zone(pg, monkeypatch):
    from click.testing import CliRunner

    from aftercall.cli import main

    random_history(pg, random.Random(12), size=20)
    monkeypatch.setenv("DATABASE_URL", pg.settings.database_url)
    monkeypatch.setenv("REPORT_TIME_ZONE", "America/New_York")
    first = CliRunner().invoke(main, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "report rollup rebuilt in America/New_York" in first.output
    again = CliRunner().invoke(main, ["db", "upgrade"])
    assert "rollup" not in again.output  # already in that zone: nothing to do
    assert_same(pg, NEW_YORK, monkeypatch)


def test_migration_round_trip_on_postgresql(pg):
    from sqlalchemy import create_engine, inspect, text

    from core import migrate

    if pg.db.engine.dialect.name != "postgresql":
        pytest.skip("tests/core/test_migrations.py goes down and up on SQLite")
    engine = create_engine(pg.settings.database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS roundtrip CASCADE"))
        connection.execute(text("CREATE SCHEMA roundtrip"))
    url = pg.settings.database_url + "?options=-csearch_path%3Droundtrip"
    try:
        migrate.upgrade(url)
        migrate.downgrade(url, "0004")
        assert "report_daily" not in inspect(engine).get_table_names(schema="roundtrip")
        migrate.upgrade(url)
        assert "report_daily" in inspect(engine).get_table_names(schema="roundtrip")
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA roundtrip CASCADE"))
        engine.dispose()


def test_rebuild_command_recovers_from_changes_behind_the_triggers_back(pg, monkeypatch):
    from click.testing import CliRunner
    from sqlalchemy import text

    from aftercall.cli import main

    random_history(pg, random.Random(13), size=20)
    with pg.db.session() as session:  # a restore, say: triggers do not see TRUNCATE
        if pg.db.engine.dialect.name == "postgresql":
            session.execute(text("TRUNCATE report_daily, report_daily_delta"))
        else:  # nor the rollup its own tables' changes
            session.execute(text("DELETE FROM report_daily_delta"))
    monkeypatch.setenv("DATABASE_URL", pg.settings.database_url)
    result = CliRunner().invoke(main, ["db", "rebuild-rollup"])
    assert result.exit_code == 0, result.output
    assert_same(pg, UTC_ZONE, monkeypatch)


def test_db_upgrade_builds_the_rollup_on_a_new_sqlite_database(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from aftercall.cli import main
    from core.db import Database

    url = f"sqlite:///{tmp_path / 'new.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("REPORT_TIME_ZONE", "America/New_York")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "report rollup rebuilt in America/New_York" in result.output
    db = Database(url)
    try:
        with db.session() as session:
            assert rollup.built_zone(session) == "America/New_York"
            # New York's local days, a UTC range each, DST changes included.
            starts = dict(
                session.execute(select(report_rollup_days.c.day, report_rollup_days.c.starts)).all()
            )
        assert starts[date(2026, 11, 1)] == datetime(2026, 11, 1, 4, tzinfo=UTC)
        assert starts[date(2026, 11, 2)] == datetime(2026, 11, 2, 5, tzinfo=UTC)
        assert min(starts) == date(1999, 12, 31) and max(starts) == date(2100, 1, 1)
    finally:
        db.dispose()
