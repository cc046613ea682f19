"""An admin's test call counts in no figure, wherever a figure is read.

The whole path once: a contact center's month of surveys, then every figure read every
way a supervisor, a BI tool or Prometheus reads them (report queries, the dashboard
page and its CSV downloads, the report API, `aftercall report`, /metrics); then an
admin places a test call from the survey page, it rings through the dialer's worker
and phonesim and is answered in full with detractor scores and a comment; then every
figure is read again and must be identical. On PostgreSQL both ways reports can be
answered are checked: from the daily rollup (before and after compaction) and from the
tables.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from rq import SimpleWorker
from sqlalchemy import select, text

from aftercall.cli import main
from aftercall.web import create_app
from core import apikeys
from core.models import Answer, RequestState, SurveyRequest
from core.runtime import use_worker_runtime
from core.users import create_user
from dialer import scheduling
from dialer.intake import CallEnded, register_call
from dialer.scheduling import CALL_QUEUE
from dialer.trial_call import TEST_CALL_FLAG, TEST_CALL_PREFIX
from phonesim import Comment, Persona
from scoring import rollup
from scoring.detractors import detractors
from scoring.report import ReportQuery, _Plan, group_values, outcomes, report, totals
from tests.dashboard.conftest import PASSWORD, csrf_from, sign_in
from tests.e2e.conftest import campaign  # noqa: F401 - the e2e fixture
from tests.scoring.test_report import add

UTC_ZONE = ZoneInfo("UTC")
ADMIN = "ada"
SUPERVISOR = "sue"
TEST_PHONE = "+14155550123"
# The campaign's clock: Monday 2026-11-23 18:05 UTC, when the test call is placed.
TODAY = datetime(2026, 11, 23, tzinfo=UTC)
SINCE, UNTIL = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
RANGE = "since=2026-11-01&until=2026-11-30"
METRICS = ("aftercall_survey_requests", "aftercall_calls_placed", "aftercall_survey_outcomes",
           "aftercall_suppressed", "aftercall_answers")  # fmt: skip


def seed_month(runtime) -> None:
    """A month of customers' surveys, some on the test call's own day, survey and
    language (and without an agent, as a test call is), so that a counted test call
    would change existing groups as well as add new ones."""
    with runtime.db.session() as session:
        for i in range(40):
            request = add(
                session, 1000 + i,
                agent=[None, "alice", "bob", "carol"][i % 4], team=["north", "south"][i % 2],
                ended=TODAY - timedelta(days=i % 12, hours=3, minutes=i),
                state=[RequestState.COMPLETED, RequestState.PARTIAL, RequestState.NO_ANSWER,
                       RequestState.COMPLETED][i % 4],
                answers=[("nps", "nps", (i * 7) % 11), ("csat", "csat", 1 + i % 5)]
                if i % 4 != 2 else [],
                attempts=1 + i % 2,
                metadata={"requested_by": "crm"} if i % 3 == 0 else None,
            )  # fmt: skip
            request.language = "es" if i % 2 else "en"
        add(session, 2000, agent=None, ended=TODAY + timedelta(hours=9),
            state=RequestState.SUPPRESSED, attempts=0, reason="not_sampled")  # fmt: skip


def queries() -> list[ReportQuery]:
    half_day = TODAY + timedelta(hours=12)  # not a day edge: always the tables
    return [
        ReportQuery(time_zone=UTC_ZONE),
        ReportQuery(by=("agent",), since=SINCE, until=UNTIL, time_zone=UTC_ZONE),
        ReportQuery(by=("agent", "day"), since=SINCE, until=UNTIL, time_zone=UTC_ZONE),
        ReportQuery(by=("survey", "language", "week"), time_zone=UTC_ZONE),
        ReportQuery(by=("team", "month"), since=SINCE, time_zone=UTC_ZONE),
        ReportQuery(by=("queue",), until=UNTIL, time_zone=UTC_ZONE),
        ReportQuery(
            by=("day",),
            since=SINCE,
            until=UNTIL,
            survey="post-call",
            language="es",
            time_zone=UTC_ZONE,
        ),
        ReportQuery(by=("meta:requested_by",), time_zone=UTC_ZONE),
        ReportQuery(by=("language",), since=TODAY, until=half_day, time_zone=UTC_ZONE),
        ReportQuery(by=("day",), time_zone=ZoneInfo("America/New_York")),
    ]


def read_every_figure(runtime, supervisor, api, monkeypatch, *, tables: bool) -> dict:
    """Every figure, keyed by where it was read; `tables`: never from the rollup."""
    figures: dict = {}
    with monkeypatch.context() as patch:
        if tables:
            patch.setattr(rollup, "covers", lambda *args: False)
        with runtime.db.session() as session:
            for query in queries():
                rows = report(session, query)
                figures[f"report {query}"] = [row.to_json() for row in rows]
                figures[f"totals {query}"] = totals(rows).to_json()
                figures[f"detractors {query}"] = [
                    entry.to_json() for entry in detractors(session, query, limit=500)
                ]
            whole_days = ReportQuery(by=("agent",), since=SINCE, until=UNTIL, time_zone=UTC_ZONE)
            assert _Plan(session, whole_days).from_rollup is not tables
            figures["choices"] = group_values(
                session, ("agent", "queue", "team", "survey", "language"), whole_days
            )
            figures["outcomes"] = {state.value: n for state, n in outcomes(session).items()}
        figures["dashboard"] = supervisor.get(f"/dashboard?{RANGE}&unit=day").text
        for table in ("agents", "trend", "detractors"):
            figures[f"csv {table}"] = supervisor.get(
                f"/dashboard/export.csv?table={table}&{RANGE}&unit=day"
            ).text
        for path in (f"scores?by=agent,day&{RANGE}&compare=previous", "scores?by=team,language",
                     f"detractors?{RANGE}&limit=500"):  # fmt: skip
            response = api.get(f"/api/v1/reports/{path}", headers=api.auth)
            assert response.status_code == 200, response.text
            figures[f"api {path}"] = response.get_json()
        metrics = api.get("/metrics").get_data(as_text=True).splitlines()
        figures["metrics"] = [line for line in metrics if line.startswith(METRICS)]
        cli = CliRunner().invoke(
            main,
            [
                "report",
                "--by",
                "agent,week",
                "--since",
                "2026-11-01",
                "--until",
                "2026-11-30",
                "--format",
                "json",
            ],
            env={"DATABASE_URL": runtime.settings.database_url, "REPORT_TIME_ZONE": "UTC"},
        )
        assert cli.exit_code == 0, cli.output
        figures["cli"] = json.loads(cli.output)
    return figures


def read_both_ways(runtime, supervisor, api, monkeypatch) -> dict[str, dict]:
    return {
        "tables": read_every_figure(runtime, supervisor, api, monkeypatch, tables=True),
        "rollup": read_every_figure(runtime, supervisor, api, monkeypatch, tables=False),
    }


def assert_same_figures(before: dict[str, dict], after: dict[str, dict]) -> None:
    for way in before:
        assert set(after[way]) == set(before[way])
        for name, figure in before[way].items():
            assert after[way][name] == figure, f"{way}: {name}"


def place_and_answer_test_call(runtime, network, admin) -> int:
    """The admin's test call, the whole way: form, call queue, worker, phonesim, webhooks."""
    network.set_persona(
        TEST_PHONE,
        Persona.answering(["0", "1", Comment("Nothing works", seconds=4, finish_key="#")]),
    )
    token = csrf_from(admin.get("/dashboard/surveys/post-call/test-call").text)
    response = admin.post(
        "/dashboard/surveys/post-call/test-call",
        data={"csrf_token": token, "phone": TEST_PHONE, "language": "es"},
    )
    assert response.status_code == 303, response.text
    request_id = int(response.headers["Location"].rsplit("/", 1)[1])
    use_worker_runtime(runtime)
    try:
        worker = SimpleWorker([runtime.queue(CALL_QUEUE)], connection=runtime.redis)
        scheduling.release_due_jobs(runtime.queue(CALL_QUEUE), network.clock.now())
        worker.work(burst=True)
        network.run_until_idle(timeout=30)
        worker.work(burst=True)
    finally:
        use_worker_runtime(None)
    return request_id


@pytest.mark.e2e
def test_a_test_call_answered_in_full_changes_no_figure(campaign, monkeypatch):  # noqa: F811
    runtime, network = campaign.runtime, campaign.network
    seed_month(runtime)
    with runtime.db.session() as session:
        create_user(session, ADMIN, PASSWORD, "admin")
        create_user(session, SUPERVISOR, PASSWORD, "supervisor")
        key = apikeys.create_key(session, "bi", ["reports:full"])
    app = create_app(runtime=runtime)
    admin, supervisor, api = app.test_client(), app.test_client(), app.test_client()
    assert sign_in(admin, ADMIN).status_code == 302
    assert sign_in(supervisor, SUPERVISOR).status_code == 302
    api.auth = {"Authorization": f"Bearer {key}"}
    before = read_both_ways(runtime, supervisor, api, monkeypatch)

    request_id = place_and_answer_test_call(runtime, network, admin)

    with runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        assert request.state is RequestState.COMPLETED and request.calls_placed == 1
        assert request.is_test
        answers = session.scalars(select(Answer).where(Answer.request_id == request_id)).all()
        # Every answer stored through the webhooks carries the mark, or a figure counts it.
        assert {(a.question_key, a.value, a.is_test) for a in answers} == {
            ("nps", 0, True), ("csat", 1, True), ("improve", None, True),
        }  # fmt: skip
    # The admin still sees the call and what was answered.
    status = admin.get(f"/dashboard/surveys/test-calls/{request_id}")
    assert status.status_code == 200 and "Nothing works" in status.text

    after = read_both_ways(runtime, supervisor, api, monkeypatch)
    assert_same_figures(before, after)
    if "rollup" in after:
        with runtime.db.session() as session:
            assert rollup.compact(session) > 0
        assert_same_figures(before, read_both_ways(runtime, supervisor, api, monkeypatch))


def test_the_same_call_as_a_customers_is_counted(runtime, monkeypatch):
    """The control for the test above: the figures it compares do move for a call that
    is not a test call, on both ways of reading them."""
    seed_month(runtime)
    query = ReportQuery(by=("language",), since=SINCE, until=UNTIL, time_zone=UTC_ZONE)

    def spanish(tables: bool):
        with monkeypatch.context() as patch:
            if tables:
                patch.setattr(rollup, "covers", lambda *args: False)
            with runtime.db.session() as session:
                return next(r for r in report(session, query) if r.group["language"] == "es")

    ways = (True, False)
    before = {tables: spanish(tables) for tables in ways}
    with runtime.db.session() as session:
        for is_test in (True, False):
            request = add(session, 3000 + is_test, agent=None, ended=TODAY + timedelta(hours=18),
                          answers=[("nps", "nps", 0), ("csat", "csat", 1)], is_test=is_test)  # fmt: skip
            request.language = "es"
    for tables in ways:
        after = spanish(tables)
        assert after.received == before[tables].received + 1
        assert after.completed == before[tables].completed + 1
        assert after.nps_distribution[0] == before[tables].nps_distribution[0] + 1
        assert after.csat_distribution[1] == before[tables].csat_distribution[1] + 1


def test_intake_cannot_make_a_customers_call_a_test_call(runtime):
    """The marks a test call's request also carries (source call id, metadata) are just
    text an intake system can send: they make nobody's call a test call."""
    ended = CallEnded(
        phone="+14155550188", source_call_id=f"{TEST_CALL_PREFIX}crm-9",
        ended_at=datetime(2026, 11, 23, 17, 0, tzinfo=UTC), agent="alice",
        metadata={TEST_CALL_FLAG: True},
    )  # fmt: skip
    with runtime.db.session() as session:
        result = register_call(
            session, runtime.catalog, ended,
            now=datetime(2026, 11, 23, 17, 5, tzinfo=UTC), settings=runtime.settings,
        )  # fmt: skip
    assert result.accepted, result
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, result.request_id)
        assert not request.is_test
        (row,) = report(session, ReportQuery(by=("agent",)))
        assert (row.group["agent"], row.received) == ("alice", 1)


def test_answers_stored_through_the_orm_copy_the_mark(runtime):
    with runtime.db.session() as session:
        add(session, 1, answers=[("nps", "nps", 3)], is_test=True)
        add(session, 2, answers=[("nps", "nps", 9)])
    with runtime.db.session() as session:
        marks = session.execute(
            select(SurveyRequest.is_test, Answer.is_test).join(Answer.request)
        ).all()
    assert sorted(marks) == [(False, False), (True, True)]


def test_report_answers_are_read_from_the_index_alone(runtime):
    """Leaving test calls out costs the per-agent report nothing: is_test is in
    ix_answers_report, so the answers stay an index-only read.

    Which index a planner picks for a tiny table depends on statistics; each backend is
    left only ix_answers_report to choose, and the read through it must not need the
    table."""
    with runtime.db.session() as session:
        add(session, 1, answers=[("nps", "nps", 3)])
        query = ReportQuery(by=("agent",), since=SINCE - timedelta(days=400), until=UNTIL)
        statement = _Plan(session, query).answers_statement()
        compiled = str(
            statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        )
    if runtime.db.engine.dialect.name == "sqlite":
        forced = compiled.replace("FROM answers", "FROM answers INDEXED BY ix_answers_report")
        with runtime.db.engine.connect() as connection:
            plan = "\n".join(
                row[3] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {forced}"))
            )
        assert "COVERING INDEX ix_answers_report" in plan, plan
        return
    with runtime.db.engine.connect() as connection, connection.begin() as transaction:
        # Dropped inside the transaction only, which is rolled back.
        for index in ("ix_answers_kind_value", "ix_answers_request_kind_value"):
            connection.execute(text(f"DROP INDEX {index}"))
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        connection.execute(text("SET LOCAL enable_bitmapscan = off"))
        plan = "\n".join(connection.scalars(text(f"EXPLAIN {compiled}")))
        transaction.rollback()
    assert "Index Only Scan using ix_answers_report" in plan, plan
