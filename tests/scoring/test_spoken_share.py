"""The share of answers said aloud rather than keyed (core.utterance): counted from the
answers, for the report's period and filters, test calls aside; in the report API, the
CLI's table (once anyone speaks) and its JSON. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import update

from aftercall.cli import main
from core import apikeys
from core.models import Answer
from scoring.report import ReportQuery, spoken_share
from tests.openapi import check_response
from tests.scoring.test_report import START, add

SCORES = "/api/v1/reports/scores"


def seed(runtime) -> None:
    """Four calls: two answered by voice (one partly), one by keys, one admin's test
    call answered by voice, which counts in no figure."""
    with runtime.db.session() as session:
        spoken = add(session, 1, answers=[("nps", "nps", 9), ("csat", "csat", 5)])
        mixed = add(session, 2, agent="bob", answers=[("nps", "nps", 3), ("csat", "csat", 2)])
        add(session, 3, answers=[("nps", "nps", 7), ("csat", "csat", 4)])
        test = add(session, 4, answers=[("nps", "nps", 0)], is_test=True)
        session.flush()
        session.execute(
            update(Answer)
            .where(Answer.request_id.in_([spoken.id, test.id]))
            .values(input="speech", transcript="nine", confidence=0.9)
        )
        session.execute(
            update(Answer)
            .where(Answer.request_id == mixed.id, Answer.question_key == "nps")
            .values(input="speech", transcript="three", confidence=0.8)
        )


def test_the_share_counts_the_period_s_answers_and_leaves_test_calls_out(runtime):
    seed(runtime)
    with runtime.db.session() as session:
        share = spoken_share(session, ReportQuery())
        assert (share.answers, share.spoken) == (6, 3)
        assert share.percent == 50.0
        alice = spoken_share(session, ReportQuery(agent="alice"))
        assert (alice.answers, alice.spoken) == (4, 2)
        later = spoken_share(session, ReportQuery(since=START + timedelta(days=1)))
        assert (later.answers, later.spoken, later.percent) == (0, 0, None)


def test_the_scores_api_says_how_answers_were_given(runtime, client):
    seed(runtime)
    with runtime.db.session() as session:
        key = apikeys.create_key(session, "bi", scopes=[apikeys.REPORTS])
    response = client.get(SCORES, headers={"Authorization": f"Bearer {key}"})
    body = response.get_json()
    check_response(SCORES, "GET", 200, body)
    assert body["answer_input"] == {"answers": 6, "spoken": 3, "percent": 50.0}


def test_the_report_command_shows_the_share_once_anyone_speaks(runtime, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    runner = CliRunner()
    quiet = runner.invoke(main, ["report", "--by", "agent"])
    assert "said aloud" not in quiet.output  # nobody spoke: the table as it always was
    seed(runtime)
    table = runner.invoke(main, ["report", "--by", "agent"])
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[-1] == "answers said aloud rather than keyed: 3 of 6 (50%)"
    as_json = runner.invoke(main, ["report", "--format", "json"])
    assert json.loads(as_json.output)["answer_input"] == {
        "answers": 6,
        "spoken": 3,
        "percent": 50.0,
    }
