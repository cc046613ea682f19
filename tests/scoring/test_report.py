"""Report figures: SQL aggregation against a straightforward reference computation."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.models import Answer, CallAttempt, RequestState, SurveyRequest
from scoring.report import ReportError, ReportQuery, ReportRow, report, totals
from tests.conftest import empty_tables

START = datetime(2026, 3, 1, tzinfo=UTC)
AGENTS = ("alice", "bob", "carol")


def empty(runtime) -> None:
    empty_tables(runtime.db)


def add(session, index, *, agent="alice", team="north", ended=START, state=RequestState.COMPLETED,
        answers=(), attempts=1, reason=None, metadata=None, is_test=False):  # fmt: skip
    request = SurveyRequest(
        phone=f"+1415555{index:04d}", source_call_id=f"s-{index}", agent=agent, queue="billing",
        team=team, language="en", call_ended_at=ended, survey_name="post-call", state=state,
        suppression_reason=reason, extra=metadata or {}, calls_placed=attempts, is_test=is_test,
    )  # fmt: skip
    session.add(request)
    session.flush()
    version_id = _version_id(session)
    attempt_ids = []
    for number in range(1, attempts + 1):
        attempt = CallAttempt(request_id=request.id, number=number, status="completed")
        session.add(attempt)
        session.flush()
        attempt_ids.append(attempt.id)
    for key, kind, value in answers:
        session.add(
            Answer(request_id=request.id, attempt_id=attempt_ids[-1], survey_version_id=version_id,
                   question_key=key, kind=kind, value=value)
        )  # fmt: skip
    return request


def _version_id(session) -> int:
    from core.config import DEFAULT_SURVEYS_DIR
    from core.survey import SurveyCatalog
    from core.survey_versions import version_for

    definition = SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR).get("post-call")
    return version_for(session, definition).id


def nps_reference(scores):
    if not scores:
        return None
    return 100.0 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)


RESPONSES = st.lists(
    st.tuples(
        st.sampled_from(AGENTS),
        st.one_of(st.none(), st.integers(0, 10)),
        st.one_of(st.none(), st.integers(1, 5)),
        st.sampled_from([RequestState.COMPLETED, RequestState.PARTIAL, RequestState.NO_ANSWER]),
    ),
    max_size=25,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(responses=RESPONSES)
def test_sql_figures_equal_the_reference_computation(runtime, responses):
    empty(runtime)
    with runtime.db.session() as session:
        for i, (agent, nps, csat, state) in enumerate(responses):
            answers = [("nps", "nps", nps)] if nps is not None else []
            answers += [("csat", "csat", csat)] if csat is not None else []
            add(session, i, agent=agent, state=state, answers=answers)
    with runtime.db.session() as session:
        rows = {row.group["agent"]: row for row in report(session, ReportQuery(by=("agent",)))}
    assert set(rows) == {agent for agent, *_ in responses}
    for agent in rows:
        mine = [r for r in responses if r[0] == agent]
        scores = [nps for _, nps, _, _ in mine if nps is not None]
        csats = [c for _, _, c, _ in mine if c is not None]
        row = rows[agent]
        assert row.nps == pytest.approx(nps_reference(scores))
        assert row.promoters == sum(s >= 9 for s in scores)
        assert row.detractors == sum(s <= 6 for s in scores)
        assert row.passives == sum(7 <= s <= 8 for s in scores)
        assert row.nps_distribution == {k: Counter(scores)[k] for k in range(11)}
        assert row.csat_responses == len(csats)
        expected_csat = 100.0 * sum(c >= 4 for c in csats) / len(csats) if csats else None
        assert row.csat == pytest.approx(expected_csat)
        assert row.csat_mean == pytest.approx(sum(csats) / len(csats) if csats else None)
        assert row.received == len(mine)
        assert row.completed == sum(s is RequestState.COMPLETED for *_, s in mine)
    total = totals(rows.values())
    all_scores = [n for _, n, _, _ in responses if n is not None]
    assert total.nps == pytest.approx(nps_reference(all_scores))


def test_golden_nps_csat_ces(runtime):
    # 10 NPS answers: 5 promoters, 2 passives, 3 detractors -> NPS 20.
    nps = [10, 10, 9, 9, 9, 8, 7, 6, 3, 0]
    csat = [5, 4, 4, 2]  # 3 of 4 satisfied -> 75
    ces = [7, 6, 2]  # mean 5; 2 of 3 low effort
    with runtime.db.session() as session:
        for i, value in enumerate(nps):
            answers = [("nps", "nps", value)]
            if i < len(csat):
                answers.append(("csat", "csat", csat[i]))
            if i < len(ces):
                answers.append(("ces", "ces", ces[i]))
            add(session, i, answers=answers)
    with runtime.db.session() as session:
        (row,) = report(session, ReportQuery())
    assert (row.promoters, row.passives, row.detractors) == (5, 2, 3)
    assert row.nps == pytest.approx(20.0)
    # p = 0.5, d = 0.3: 1.96 * 100 * sqrt((0.8 - 0.04) / 10) = 54.03
    assert row.nps_margin == pytest.approx(54.034, abs=0.01)
    assert not row.nps_reliable  # 10 answers are too few to mean much
    assert row.csat == pytest.approx(75.0)
    # 1.96 * 100 * sqrt(0.75 * 0.25 / 4) = 42.43
    assert row.csat_margin == pytest.approx(42.435, abs=0.01)
    assert row.csat_mean == pytest.approx(3.75)
    assert row.ces == pytest.approx(5.0)
    assert row.ces_low_effort == pytest.approx(200 / 3)


def test_empty_report_and_single_answer(runtime):
    with runtime.db.session() as session:
        assert report(session, ReportQuery(by=("agent",))) == []
        add(session, 1, answers=[("nps", "nps", 10)])
    with runtime.db.session() as session:
        (row,) = report(session, ReportQuery(by=("agent",)))
    assert row.nps == 100.0
    assert row.nps_margin == 0.0
    assert row.csat is None and row.ces is None
    assert row.to_json()["csat"] is None


def test_funnel(runtime):
    with runtime.db.session() as session:
        add(session, 1, state=RequestState.COMPLETED, attempts=2, answers=[("nps", "nps", 9)])
        add(session, 2, state=RequestState.COMPLETED, attempts=1, answers=[("nps", "nps", 3)])
        add(session, 3, state=RequestState.PARTIAL, answers=[("nps", "nps", 5)])
        add(session, 4, state=RequestState.OPTED_OUT)
        add(session, 5, state=RequestState.VOICEMAIL)
        add(session, 6, state=RequestState.NO_ANSWER, attempts=3)
        add(session, 7, state=RequestState.SUPPRESSED, attempts=0, reason="not_sampled")
        add(session, 8, state=RequestState.SUPPRESSED, attempts=0, reason="opted_out")
        add(session, 9, state=RequestState.EXPIRED, attempts=0, reason="validity_expired")
    with runtime.db.session() as session:
        (row,) = report(session, ReportQuery())
    assert row.received == 9
    assert row.suppressed == {
        **row.suppressed,
        "not_sampled": 1,
        "opted_out": 1,
        "validity_expired": 1,
    }
    assert row.suppressed_total == 3
    assert (row.placed, row.calls_placed) == (6, 9)
    assert (row.answered, row.reached) == (5, 4)
    assert (row.completed, row.partial, row.opted_out) == (2, 1, 1)
    assert row.response_rate == pytest.approx(50.0)  # 2 completed of 4 reached
    assert row.response_rate_placed == pytest.approx(100 * 2 / 6)
    assert row.attempts_per_completed == pytest.approx(1.5)


def test_days_in_the_contact_centers_time_zone_across_dst(runtime):
    new_york = ZoneInfo("America/New_York")
    # 1 Nov 2026, US clocks go back: the local day is 25 hours long.
    ended = [
        datetime(2026, 11, 1, 3, 30, tzinfo=UTC),  # 31 Oct, 23:30 EDT
        datetime(2026, 11, 1, 4, 30, tzinfo=UTC),  # 1 Nov, 00:30 EDT
        datetime(2026, 11, 2, 4, 30, tzinfo=UTC),  # 1 Nov, 23:30 EST
        datetime(2026, 11, 2, 5, 30, tzinfo=UTC),  # 2 Nov, 00:30 EST
    ]
    with runtime.db.session() as session:
        for i, when in enumerate(ended):
            add(session, i, ended=when, answers=[("nps", "nps", 10)])
    query = ReportQuery(
        by=("day",), since=datetime(2026, 10, 31, 4, tzinfo=UTC),
        until=datetime(2026, 11, 3, 5, tzinfo=UTC), time_zone=new_york,
    )  # fmt: skip
    with runtime.db.session() as session:
        rows = report(session, query)
    assert {r.group["day"]: r.nps_responses for r in rows} == {
        "2026-10-31": 1,
        "2026-11-01": 2,
        "2026-11-02": 1,
    }


def test_weeks_months_and_a_metadata_key(runtime):
    with runtime.db.session() as session:
        for i, days in enumerate([0, 1, 7, 31]):
            add(session, i, ended=START + timedelta(days=days), answers=[("nps", "nps", 8)],
                metadata={"product": "fiber" if i % 2 else "mobile"})  # fmt: skip
    with runtime.db.session() as session:
        weeks = report(session, ReportQuery(by=("week",)))
        months = report(session, ReportQuery(by=("month", "meta:product")))
    assert [(r.group["week"], r.received) for r in weeks] == [
        ("2026-W09", 1), ("2026-W10", 2), ("2026-W14", 1),
    ]  # fmt: skip
    assert [(r.group["month"], r.group["meta:product"], r.received) for r in months] == [
        ("2026-03", "fiber", 1), ("2026-03", "mobile", 2), ("2026-04", "fiber", 1),
    ]  # fmt: skip


def test_filters_and_previous_period(runtime):
    with runtime.db.session() as session:
        add(session, 1, agent="alice", ended=START, answers=[("nps", "nps", 10)])
        add(session, 2, agent="bob", ended=START, answers=[("nps", "nps", 0)])
        add(session, 3, agent="alice", ended=START - timedelta(days=7), answers=[("nps", "nps", 0)])
    query = ReportQuery(since=START, until=START + timedelta(days=7), agent="alice")
    with runtime.db.session() as session:
        (now,) = report(session, query)
        (before,) = report(session, query.previous_period())
    assert (now.nps, before.nps) == (100.0, -100.0)


@pytest.mark.parametrize("by", [("colour",), ("day", "week"), ("meta:",)])
def test_bad_groupings_are_explained(runtime, by):
    with runtime.db.session() as session, pytest.raises(ReportError):
        report(session, ReportQuery(by=by))


def test_detractor_list_newest_first_with_comment(runtime):
    from scoring.detractors import detractors

    with runtime.db.session() as session:
        add(session, 1, ended=START, answers=[("nps", "nps", 9), ("csat", "csat", 5)])
        add(session, 2, ended=START + timedelta(hours=1), answers=[("nps", "nps", 6)])
        add(
            session,
            3,
            ended=START + timedelta(hours=2),
            answers=[("nps", "nps", 8), ("csat", "csat", 2)],
        )
        unhappy = add(session, 4, ended=START + timedelta(hours=3), agent="bob",
                      answers=[("nps", "nps", 0)])  # fmt: skip
        session.add(
            Answer(request_id=unhappy.id, attempt_id=unhappy.attempts[0].id,
                   survey_version_id=_version_id(session), question_key="improve",
                   kind="comment", recording_url="https://example.test/RE1",
                   transcript="Nobody called me back")
        )  # fmt: skip
    with runtime.db.session() as session:
        entries = detractors(session, ReportQuery())
        only_bob = detractors(session, ReportQuery(agent="bob"))
        second_page = detractors(session, ReportQuery(), limit=2, offset=2)
    assert [e.phone[-4:] for e in entries] == ["0004", "0003", "0002"]
    assert entries[0].answers == {"nps": 0}
    assert (entries[0].comment, entries[0].recording_url) == (
        "Nobody called me back",
        "https://example.test/RE1",
    )
    assert entries[1].answers == {"nps": 8, "csat": 2}
    assert [e.request_id for e in only_bob] == [unhappy.id]
    assert [e.phone[-4:] for e in second_page] == ["0002"]


_COUNTS = st.integers(min_value=0, max_value=500)


@given(
    nps=st.lists(_COUNTS, min_size=11, max_size=11),
    csat=st.lists(_COUNTS, min_size=5, max_size=5),
    ces=st.lists(_COUNTS, min_size=7, max_size=7),
    funnel=st.lists(_COUNTS, min_size=8, max_size=8),
)
def test_a_rows_figures_summed_once_are_its_properties(nps, csat, ces, funnel):
    """figures() (the CSV's line, summing each tally once) says what the properties say."""
    received, placed, calls, answered, reached, completed, partial, attempts = funnel
    row = ReportRow(
        group={"agent": "ana"},
        nps_distribution=dict(enumerate(nps)),
        csat_distribution={k + 1: n for k, n in enumerate(csat)},
        ces_distribution={k + 1: n for k, n in enumerate(ces)},
        received=received, placed=placed, calls_placed=calls, answered=answered,
        reached=reached, completed=completed, partial=partial,
        attempts_for_completed=attempts, suppressed={"sampled": 3, "fatigue": 0},
    )  # fmt: skip

    def rounded(value, digits=1):
        return None if value is None else round(value, digits)

    assert row.figures() == {
        "nps": rounded(row.nps), "nps_margin": rounded(row.nps_margin),
        "nps_reliable": row.nps_reliable, "nps_responses": row.nps_responses,
        "promoters": row.promoters, "passives": row.passives, "detractors": row.detractors,
        "csat": rounded(row.csat), "csat_margin": rounded(row.csat_margin),
        "csat_mean": rounded(row.csat_mean, 2), "csat_responses": row.csat_responses,
        "ces": rounded(row.ces, 2), "ces_low_effort": rounded(row.ces_low_effort),
        "ces_responses": row.ces_responses, "received": received, "suppressed": 3,
        "placed": placed, "calls_placed": calls, "answered": answered, "reached": reached,
        "completed": completed, "partial": partial, "opted_out": 0, "texted": 0,
        "undelivered": 0, "no_reply": 0, "response_rate": rounded(row.response_rate),
        "response_rate_placed": rounded(row.response_rate_placed),
        "attempts_per_completed": rounded(row.attempts_per_completed, 2),
    }  # fmt: skip
    assert {k: v for k, v in row.to_json().items() if k in row.figures()} == row.figures()
