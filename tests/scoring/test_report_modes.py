"""The survey mode as a report dimension, and unattributed answers, on every way out.

A contact center's callbacks and in-call surveys side by side: grouped and filtered by
mode (from the rollup, keyed by mode since migration 0018, as from the tables), each mode's funnel and response rates
(an in-call request places no call: it is received, and reached once its customer is
transferred and the survey begins; one waiting for its transfer is received only), and
the in-call survey no support call claimed, shown as "unattributed" in the CLI's table,
the CSV, the dashboard's tables, and flagged in JSON. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from aftercall.cli import main
from core import apikeys
from core.models import (
    Answer,
    Attribution,
    CallAttempt,
    RequestState,
    SurveyMode,
    SurveyRequest,
)
from scoring import csv_export, rollup
from scoring.detractors import detractors
from scoring.filters import parse_report_query
from scoring.formats import to_csv, to_table
from scoring.report import (
    MODES,
    UNATTRIBUTED,
    ReportError,
    ReportQuery,
    _Plan,
    report,
    spoken_share,
    totals,
)
from tests.openapi import check_response
from tests.scoring.test_report import START, _version_id, add

SCORES = "/api/v1/reports/scores"
DETRACTORS = "/api/v1/reports/detractors"
UTC = ZoneInfo("UTC")
# A transferred in-call survey's states: the customer came on the survey line.
TRANSFERRED = (RequestState.COMPLETED, RequestState.PARTIAL, RequestState.ABANDONED,
               RequestState.OPTED_OUT, RequestState.IN_PROGRESS)  # fmt: skip


def add_in_call(session, index, *, agent="alice", team="north", queue="billing",
                state=RequestState.COMPLETED, answers=(), reason=None, ended=START):  # fmt: skip
    """An in-call request as ivr.inbound leaves it: no call placed (calls_placed 0), an
    inbound attempt once its customer was transferred, and no agent, queue or team when
    no support call claimed it (agent=None: attribution "none")."""
    unattributed = agent is None
    request = SurveyRequest(
        phone=f"+1415556{index:04d}", source_call_id=f"in-call-{index}", agent=agent,
        queue=None if unattributed else queue, team=None if unattributed else team,
        language="en", call_ended_at=ended, survey_name="post-call", state=state,
        suppression_reason=reason, calls_placed=0, mode=SurveyMode.IN_CALL,
        attribution=Attribution.NONE if unattributed else Attribution.TOKEN,
    )  # fmt: skip
    session.add(request)
    session.flush()
    if state in TRANSFERRED:
        attempt = CallAttempt(request_id=request.id, number=1, status="completed",
                              direction="inbound")  # fmt: skip
        session.add(attempt)
        session.flush()
        for key, kind, value in answers:
            session.add(
                Answer(request_id=request.id, attempt_id=attempt.id,
                       survey_version_id=_version_id(session), question_key=key, kind=kind,
                       value=value)
            )  # fmt: skip
    return request


def seed(session) -> None:
    """Six callbacks and six in-call requests of 1 March 2026 (see the figures below)."""
    add(session, 1, agent="alice", attempts=2, answers=[("nps", "nps", 10), ("csat", "csat", 5)])
    add(session, 2, agent="alice", answers=[("nps", "nps", 9)])
    add(session, 3, agent="bob", state=RequestState.PARTIAL, answers=[("nps", "nps", 3)])
    add(session, 4, agent="bob", state=RequestState.NO_ANSWER, attempts=3)
    add(session, 5, agent="bob", state=RequestState.VOICEMAIL)
    add(session, 6, agent="carol", team="south", state=RequestState.SUPPRESSED, attempts=0,
        reason="not_sampled")  # fmt: skip
    add_in_call(session, 1, agent="alice", answers=[("nps", "nps", 6), ("csat", "csat", 2)])
    add_in_call(session, 2, agent="bob", answers=[("nps", "nps", 10)])
    add_in_call(session, 3, agent=None, answers=[("nps", "nps", 0)])
    add_in_call(session, 4, agent="alice", state=RequestState.ABANDONED)
    add_in_call(session, 5, agent="bob", state=RequestState.AWAITING_TRANSFER)
    add_in_call(session, 6, agent="carol", team="south", state=RequestState.EXPIRED,
                reason="validity_expired")  # fmt: skip


@pytest.fixture
def seeded(runtime):
    with runtime.db.session() as session:
        seed(session)
    return runtime


def figures(row) -> dict:
    keys = ("received", "suppressed", "placed", "calls_placed", "answered", "reached",
            "completed", "partial", "response_rate", "response_rate_placed",
            "attempts_per_completed", "nps_responses", "nps")  # fmt: skip
    return {key: row.to_json()[key] for key in keys}


CALLBACK = {
    "received": 6, "suppressed": 1, "placed": 5, "calls_placed": 8, "answered": 4, "reached": 3,
    "completed": 2, "partial": 1, "response_rate": 66.7, "response_rate_placed": 40.0,
    "attempts_per_completed": 1.5, "nps_responses": 3, "nps": 33.3,
}  # fmt: skip
IN_CALL = {
    # Reached: three completed and one hung up on the survey line; the one awaiting its
    # transfer and the one whose transfer never came (expired) are received only.
    "received": 6, "suppressed": 1, "placed": 0, "calls_placed": 0, "answered": 4, "reached": 4,
    "completed": 3, "partial": 0, "response_rate": 75.0, "response_rate_placed": 75.0,
    "attempts_per_completed": 0.0, "nps_responses": 3, "nps": -33.3,
}  # fmt: skip


# -- grouping and filtering ------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_by_mode_each_mode_has_its_own_funnel_and_scores(runtime):
    with runtime.db.session() as session:
        rows = report(session, ReportQuery(by=("mode",)))
        (everything,) = report(session, ReportQuery())
    assert [row.group for row in rows] == [{"mode": "callback"}, {"mode": "in_call"}]
    callback, in_call = rows
    assert figures(callback) == CALLBACK
    assert figures(in_call) == IN_CALL
    # The modes partition the requests: their counts add up to the report without mode.
    assert totals(rows).to_json() == everything.to_json()
    assert (everything.received, everything.reached, everything.completed) == (12, 7, 5)


@pytest.mark.usefixtures("seeded")
def test_in_call_figures_do_not_change_the_callbacks(runtime):
    """Callbacks alone read what they read before in-call surveys existed."""
    with runtime.db.session() as session:
        session.query(Answer).filter(
            Answer.request_id.in_(
                session.query(SurveyRequest.id).filter(SurveyRequest.mode == SurveyMode.IN_CALL)
            )
        ).delete(synchronize_session=False)
        session.query(CallAttempt).filter(CallAttempt.direction == "inbound").delete()
        session.query(SurveyRequest).filter(SurveyRequest.mode == SurveyMode.IN_CALL).delete()
    with runtime.db.session() as session:
        (alone,) = report(session, ReportQuery())
    assert figures(alone) == CALLBACK
    assert alone.response_rate_placed == pytest.approx(100 * 2 / 5)  # completed per placed


@pytest.mark.parametrize(("mode", "expected"), [("callback", CALLBACK), ("in_call", IN_CALL)])
@pytest.mark.usefixtures("seeded")
def test_filtering_by_mode(runtime, mode, expected):
    with runtime.db.session() as session:
        (only,) = report(session, ReportQuery(mode=mode))
        by_agent = report(session, ReportQuery(by=("agent", "mode"), mode=mode))
        unhappy = detractors(session, ReportQuery(mode=mode))
    assert figures(only) == expected
    assert {row.group["mode"] for row in by_agent} == {mode}
    assert totals(by_agent).to_json() == only.to_json()
    phones = {entry.phone[:8] for entry in unhappy}
    assert phones == {"+1415555" if mode == "callback" else "+1415556"}


@pytest.mark.usefixtures("seeded")
def test_answers_and_requests_agree_on_the_mode_of_every_group(runtime):
    """Scores come from the answers' copy of the mode, the funnel from the requests: each
    group's scores sit with its own requests."""
    with runtime.db.session() as session:
        rows = report(session, ReportQuery(by=("agent", "mode")))
    groups = {(row.group["agent"], row.group["mode"]): row for row in rows}
    assert set(groups) == {
        ("alice", "callback"), ("bob", "callback"), ("carol", "callback"),
        ("alice", "in_call"), ("bob", "in_call"), ("carol", "in_call"), (None, "in_call"),
    }  # fmt: skip
    assert groups[(None, "in_call")].nps_distribution[0] == 1
    assert groups[(None, "in_call")].received == 1
    assert all(row.nps_responses <= row.received for row in rows)


def test_a_request_awaiting_its_transfer_is_received_not_reached(runtime):
    with runtime.db.session() as session:
        add_in_call(session, 1, state=RequestState.AWAITING_TRANSFER)
    with runtime.db.session() as session:
        (row,) = report(session, ReportQuery(by=("mode",)))
    assert (row.received, row.placed, row.answered, row.reached, row.completed) == (1, 0, 0, 0, 0)
    assert (row.response_rate, row.response_rate_placed) == (None, None)


def test_answers_without_a_copied_mode_count_as_callbacks(runtime):
    """An answer stored with its report fields set copies no mode: a callback's, as a
    request is by default, rather than a group of its own."""
    with runtime.db.session() as session:
        request = add(session, 1)
        session.flush()
        session.add(
            Answer(request_id=request.id, attempt_id=request.attempts[0].id,
                   survey_version_id=_version_id(session), question_key="nps", kind="nps",
                   value=9, call_ended_at=request.call_ended_at, agent="alice")
        )  # fmt: skip
    with runtime.db.session() as session:
        rows = report(session, ReportQuery(by=("mode",)))
        (filtered,) = report(session, ReportQuery(mode="callback"))
    assert [(row.group["mode"], row.nps_responses) for row in rows] == [("callback", 1)]
    assert filtered.nps_responses == 1


# -- the rollup ------------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_the_rollup_answers_reports_by_and_for_a_mode_as_the_tables_do(runtime, monkeypatch):
    by_mode = (
        ReportQuery(by=("mode",)),
        ReportQuery(by=("agent", "mode", "day")),
        ReportQuery(mode="in_call"),
        ReportQuery(by=("team",), mode="callback"),
    )
    with runtime.db.session() as session:  # the rollup is on, on both databases
        assert rollup.covers(session, UTC, None, None, ("mode",), {})
        assert rollup.covers(session, UTC, None, None, (), {"mode": "in_call"})
        # In-call rows, unattributed ones and the placed rate of mixed groups included.
        for query in (ReportQuery(), ReportQuery(by=("agent",)), ReportQuery(by=("team", "day")),
                      *by_mode):  # fmt: skip
            assert _Plan(session, query).from_rollup, query
            from_rollup = [row.to_json() for row in report(session, query)]
            share = spoken_share(session, query)
            with monkeypatch.context() as patch:
                patch.setattr(rollup, "covers", lambda *args: False)
                from_tables = [row.to_json() for row in report(session, query)]
                assert spoken_share(session, query) == share, query
            assert from_rollup == from_tables, query


# -- response rates --------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_the_placed_rate_counts_transferred_customers_and_stays_a_rate(runtime):
    """Per mode: completed per request called (callback) or transferred (in-call). A row
    of both modes divides by the larger of placed and reached, all the counters tell:
    never above 100%, and the exact figures are the rows by mode."""
    with runtime.db.session() as session:
        (everything,) = report(session, ReportQuery())
        by_agent = {row.group["agent"]: row for row in report(session, ReportQuery(by=("agent",)))}
    assert everything.invited == max(5, 7)
    assert everything.response_rate_placed == pytest.approx(100 * 5 / 7)
    for row in (everything, *by_agent.values()):
        assert row.response_rate_placed is None or 0 <= row.response_rate_placed <= 100
    # An unattributed in-call group: one transferred, completed.
    assert by_agent[None].response_rate_placed == 100.0
    assert by_agent[None].response_rate == 100.0


# -- unattributed ----------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_unattributed_groups_are_labelled_in_the_table_and_csv_and_flagged_in_json(runtime):
    with runtime.db.session() as session:
        by_agent = report(session, ReportQuery(by=("agent",)))
        by_team_mode = report(session, ReportQuery(by=("team", "mode")))
        by_meta = report(session, ReportQuery(by=("meta:product",)))
    flagged = {row.group["agent"]: row.to_json()["unattributed"] for row in by_agent}
    assert flagged == {"alice": False, "bob": False, "carol": False, None: True}
    assert [row.to_json()["agent"] for row in by_agent if row.unattributed] == [None]
    assert totals(by_agent).to_json()["unattributed"] is False

    table = to_table(by_agent, ("agent",), totals(by_agent)).splitlines()
    assert [line.split()[0] for line in table[2:6]] == ["alice", "bob", "carol", UNATTRIBUTED]
    parsed = list(csv.DictReader(io.StringIO(to_csv(by_team_mode, ("team", "mode")))))
    assert (UNATTRIBUTED, "in_call") in {(r["team"], r["mode"]) for r in parsed}
    # A metadata key the requests lack is no attribution: it stays "(none)" / blank.
    assert to_table(by_meta, ("meta:product",)).splitlines()[2].startswith("(none)")
    assert (
        next(csv.DictReader(io.StringIO(to_csv(by_meta, ("meta:product",)))))["meta:product"] == ""
    )
    assert by_meta[0].to_json()["unattributed"] is False

    agents = csv_export.agent_table(by_agent)
    assert [row[0] for row in agents.rows] == ["alice", "bob", "carol", UNATTRIBUTED]
    assert csv_export.to_csv(agents).splitlines()[4].startswith(f"{UNATTRIBUTED},")


# -- reading a mode from a request -------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_the_parser_takes_each_mode(mode):
    query = parse_report_query({"mode": mode, "by": "mode, agent"}, UTC)
    assert (query.mode, query.by) == (mode, ("mode", "agent"))


@pytest.mark.parametrize("text", ["", "in-call", "CALLBACK", " callback", "sms", "x\x00"])
def test_the_parser_refuses_other_modes(text):
    with pytest.raises(ReportError) as error:
        parse_report_query({"mode": text}, UTC)
    assert error.value.parameter == "mode"
    assert "callback, in_call" in error.value.problem


# -- the API ---------------------------------------------------------------------------


@pytest.fixture
def auth(runtime) -> dict[str, str]:
    with runtime.db.session() as session:
        return {"Authorization": f"Bearer {apikeys.create_key(session, 'bi', ['reports'])}"}


def get(client, auth, path: str):
    response = client.get(path, headers=auth)
    body = response.get_json()
    check_response(path, "GET", response.status_code, body)
    return response.status_code, body


@pytest.mark.usefixtures("seeded")
def test_the_api_groups_and_filters_by_mode(client, auth):
    status, body = get(client, auth, f"{SCORES}?by=mode")
    assert status == 200
    rows = {row["mode"]: row for row in body["rows"]}
    assert {name: rows["callback"][name] for name in CALLBACK} == CALLBACK
    assert {name: rows["in_call"][name] for name in IN_CALL} == IN_CALL
    assert body["query"]["mode"] is None
    assert body["total"]["received"] == 12

    status, body = get(client, auth, f"{SCORES}?mode=in_call&by=agent&since=2026-03-01")
    assert (status, body["query"]["mode"]) == (200, "in_call")
    agents = {row["agent"]: row for row in body["rows"]}
    assert set(agents) == {"alice", "bob", "carol", None}
    assert agents[None]["unattributed"] is True and agents["bob"]["unattributed"] is False
    assert body["total"]["received"] == 6

    status, body = get(client, auth, f"{SCORES}?by=agent,mode&compare=team")
    assert status == 200
    unattributed = next(row for row in body["rows"] if row["agent"] is None)
    assert (unattributed["team"], unattributed["mode"]) == (None, "in_call")
    assert unattributed["team_figures"]["nps_responses"] == 1

    status, body = get(client, auth, f"{DETRACTORS}?mode=in_call")
    assert status == 200
    assert sorted(entry["answers"]["nps"] for entry in body["detractors"]) == [0, 6]
    assert [entry["agent"] for entry in body["detractors"] if entry["answers"]["nps"] == 0] == [
        None
    ]


@pytest.mark.parametrize("query", ["mode=", "mode=in-call", "mode=Callback", "by=mode,modes"])
def test_the_api_refuses_other_modes(client, auth, query):
    status, body = get(client, auth, f"{SCORES}?{query}")
    assert status == 400
    assert body["error"]["code"] == "invalid_query"
    assert body["error"]["message"].startswith(("mode: ", "by: "))


@pytest.mark.usefixtures("seeded")
def test_callback_rows_keep_their_shape(client, auth):
    """A report without mode answers as before, plus `unattributed` on each row."""
    status, body = get(client, auth, f"{SCORES}?by=agent&mode=callback")
    assert status == 200
    assert [row["agent"] for row in body["rows"]] == ["alice", "bob", "carol"]
    assert all(row["unattributed"] is False and "mode" not in row for row in body["rows"])


# -- the CLI ---------------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_the_report_command_by_and_for_a_mode(runtime, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    runner = CliRunner()
    as_json = runner.invoke(main, ["report", "--by", "mode", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    rows = {row["mode"]: row for row in json.loads(as_json.output)["rows"]}
    assert (rows["callback"]["response_rate"], rows["in_call"]["response_rate"]) == (66.7, 75.0)

    table = runner.invoke(main, ["report", "--by", "agent", "--mode", "in_call"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert [line.split()[0] for line in lines[2:-3]] == ["alice", "bob", "carol", UNATTRIBUTED]
    assert lines[-2].split()[0] == "total" and lines[-2].split()[2].endswith("*")
    assert lines[-1].startswith("* fewer than 30 answers")

    as_csv = runner.invoke(main, ["report", "--by", "team,mode", "--format", "csv"])
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert {(r["team"], r["mode"]) for r in parsed} == {
        ("north", "callback"), ("north", "in_call"), ("south", "callback"),
        ("south", "in_call"), (UNATTRIBUTED, "in_call"),
    }  # fmt: skip

    bad = runner.invoke(main, ["report", "--mode", "sms"])
    assert bad.exit_code == 2
    assert "'sms' is not one of 'callback', 'in_call'" in bad.output


def test_the_report_command_offers_mode(runtime, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    help_text = " ".join(CliRunner().invoke(main, ["report", "--help"]).output.split())
    assert "--mode [callback|in_call]" in help_text
    assert "language, mode, channel, meta:<key>" in help_text


def test_in_call_requests_a_week_apart_fall_in_their_own_periods(runtime):
    with runtime.db.session() as session:
        add_in_call(session, 1, ended=START, answers=[("nps", "nps", 10)])
        add_in_call(session, 2, ended=START + timedelta(days=7), answers=[("nps", "nps", 0)])
        add(session, 3, ended=START + timedelta(days=7), answers=[("nps", "nps", 9)])
    with runtime.db.session() as session:
        rows = report(session, ReportQuery(by=("week", "mode")))
    assert [(r.group["week"], r.group["mode"], r.nps) for r in rows] == [
        ("2026-W09", "in_call", 100.0),
        ("2026-W10", "callback", 100.0),
        ("2026-W10", "in_call", -100.0),
    ]
