"""/api/v1/follow-ups: a CRM lists, reads and updates follow-ups; the last writer wins."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import apikeys
from core.models import FollowUp, User
from scoring import follow_ups
from tests.api.conftest import NOW
from tests.openapi import check_response
from tests.scoring.test_follow_ups import open_one
from tests.scoring.test_follow_ups import survey_request as survey_request

URL = "/api/v1/follow-ups"


@pytest.fixture
def crm(runtime):
    with runtime.db.session() as session:
        key = apikeys.create_key(session, "zendesk", ["follow-ups"])
        dave = User(username="dave", password_hash="x", role="supervisor")
        session.add_all([dave, User(username="ana", password_hash="x", role="analyst")])
        session.flush()
        follow_ups.set_teams(session, dave.id, ["north"])
    return {"Authorization": f"Bearer {key}"}


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_key_without_the_scope_is_refused(runtime, client, auth):
    response = client.get(URL, headers=auth)
    assert response.status_code == 403
    assert "follow-ups" in response.get_json()["error"]["message"]


def test_the_list_overdue_first_with_the_customer_s_number(runtime, client, crm, survey_request):
    first = open_one(runtime, survey_request(("nps", "nps", 3)))
    second = open_one(runtime, survey_request(("csat", "csat", 1), phone="+14155550199"))
    with runtime.db.session() as session:
        session.get(FollowUp, second).due_at = NOW - timedelta(hours=1)
    body = client.get(URL, headers=crm).get_json()
    check_response(URL, "GET", 200, body)
    assert [row["id"] for row in body["follow_ups"]] == [second, first]
    assert body["follow_ups"][0]["phone"] == "+14155550199"
    assert body["follow_ups"][0]["overdue"] is True
    assert body["total"] == 2
    overdue = client.get(f"{URL}?overdue=true", headers=crm).get_json()
    assert [row["id"] for row in overdue["follow_ups"]] == [second]


@pytest.mark.parametrize(
    "query",
    [
        "status=closed",
        "overdue=maybe",
        "limit=0",
        "limit=501",
        "offset=-1",
        "sinec=1",
        "team=a%00b",
    ],
)
def test_bad_queries_are_400(runtime, client, crm, query):
    response = client.get(f"{URL}?{query}", headers=crm)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_query"


def test_one_follow_up_with_answers_notes_and_history(runtime, client, crm, survey_request):
    follow_up_id = open_one(
        runtime, survey_request(("nps", "nps", 3), ("improve", "comment", None))
    )
    body = client.get(f"{URL}/{follow_up_id}", headers=crm).get_json()
    check_response(f"{URL}/{{follow_up_id}}", "GET", 200, body)
    assert [a["question_key"] for a in body["answers"]] == ["nps", "improve"]
    assert body["answers"][1]["transcript"] == "too slow"
    assert body["history"][0]["field"] == "opened"
    assert client.get(f"{URL}/999999", headers=crm).status_code == 404
    assert client.get(f"{URL}/99999999999", headers=crm).status_code == 404


def test_a_crm_update_is_applied_and_recorded(runtime, client, crm, survey_request):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 3)))
    at = NOW + timedelta(hours=1)
    response = client.patch(
        f"{URL}/{follow_up_id}",
        json={"status": "contacted", "owner": "dave", "note": "Ticket #88 opened",
              "updated_at": iso(at), "actor": "agent@acme.example"},
        headers=crm,
    )  # fmt: skip
    body = response.get_json()
    assert response.status_code == 200, body
    check_response(f"{URL}/{{follow_up_id}}", "PATCH", 200, body)
    assert (body["status"], body["owner"], body["applied"]) == ("contacted", "dave", True)
    assert body["notes"] == [
        {"author": "api:zendesk (agent@acme.example)", "body": "Ticket #88 opened",
         "at": iso(at)}
    ]  # fmt: skip
    assert body["first_contacted_at"] == iso(at)
    assert {c["source"] for c in body["history"][1:]} == {"api"}


def test_an_older_crm_update_does_not_undo_a_newer_dashboard_change(
    runtime, client, crm, survey_request
):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 3)))
    with runtime.db.session() as session:
        row = session.get(FollowUp, follow_up_id)
        follow_ups.update(session, row, follow_ups.Change(status="resolved"), actor="carol",
                          source="dashboard", at=NOW + timedelta(hours=2))  # fmt: skip
    body = client.patch(
        f"{URL}/{follow_up_id}",
        json={"status": "contacted", "updated_at": iso(NOW + timedelta(hours=1))},
        headers=crm,
    ).get_json()
    assert (body["status"], body["applied"]) == ("resolved", False)
    assert body["history"][-1] == {
        "field": "status", "from": "resolved", "to": "contacted", "by": "api:zendesk",
        "source": "api", "at": iso(NOW + timedelta(hours=1)), "applied": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "contacted"}, "updated_at is required"),
        ({"status": "contacted", "updated_at": "yesterday"}, "not an ISO 8601 time"),
        ({"status": "contacted", "updated_at": "2026-11-23T10:00:00"}, "needs a UTC offset"),
        ({"updated_at": "2026-11-23T10:00:00Z"}, "nothing to change"),
        ({"status": "closed", "updated_at": "2026-11-23T10:00:00Z"}, "status must be one of"),
        ({"status": 3, "updated_at": "2026-11-23T10:00:00Z"}, "status must be a string"),
        ({"note": "", "updated_at": "2026-11-23T10:00:00Z"}, "nothing to change"),
        ({"note": "x" * 5000, "updated_at": "2026-11-23T10:00:00Z"}, "at most 4000"),
        ({"priority": 1, "updated_at": "2026-11-23T10:00:00Z"}, "unknown field"),
        ({"owner": "zed", "updated_at": "2026-11-23T10:00:00Z"}, "not a dashboard user"),
        ({"owner": "ana", "updated_at": "2026-11-23T10:00:00Z"}, "may work this follow-up"),
        ({"status": "new", "updated_at": "2999-01-01T00:00:00Z"}, "not in the future"),
        ({"status": "new", "updated_at": "1999-12-31T00:00:00Z"}, "not before 2000"),
        ({"status": "new", "updated_at": "0001-01-01T00:00:00+01:00"}, "out of range"),
        ({"note": "a\x00b", "updated_at": "2026-11-23T10:00:00Z"}, "NUL or invalid"),
        (
            {"actor": "x\ud800", "note": "hi", "updated_at": "2026-11-23T10:00:00Z"},
            "NUL or invalid",
        ),
    ],
)
def test_bad_updates_are_400_and_change_nothing(
    runtime, client, crm, survey_request, body, message
):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 3)))
    response = client.patch(f"{URL}/{follow_up_id}", json=body, headers=crm)
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]
    with runtime.db.session() as session:
        row = session.get(FollowUp, follow_up_id)
        assert (row.status, row.owner) == ("new", "carol")
        assert len(follow_ups.history(session, follow_up_id)) == 1


def test_concurrent_updates_both_land_in_history_and_the_later_time_wins(
    runtime, client, crm, survey_request, app
):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 3)))
    barrier = threading.Barrier(2)
    statuses = {1: "contacted", 2: "resolved"}

    def patch(hours: int) -> None:
        with app.test_client() as own:
            barrier.wait()
            own.patch(
                f"{URL}/{follow_up_id}",
                json={"status": statuses[hours], "updated_at": iso(NOW + timedelta(hours=hours))},
                headers=crm,
            )

    threads = [threading.Thread(target=patch, args=(hours,)) for hours in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with runtime.db.session() as session:
        assert session.scalar(select(FollowUp.status).where(FollowUp.id == follow_up_id)) == (
            "resolved"
        )
        changes = [c for c in follow_ups.history(session, follow_up_id) if c.field == "status"]
        assert len(changes) == 2


def test_figures_per_team(runtime, client, crm, survey_request):
    north = open_one(runtime, survey_request(("nps", "nps", 3), team="north"))
    open_one(runtime, survey_request(("nps", "nps", 3), team="south"))
    with runtime.db.session() as session:
        row = session.get(FollowUp, north)
        follow_ups.update(session, row, follow_ups.Change(status="resolved"), actor="carol",
                          source="dashboard", at=NOW + timedelta(hours=6))  # fmt: skip
    body = client.get(f"{URL}/figures?by=team", headers=crm).get_json()
    check_response(f"{URL}/figures", "GET", 200, body)
    rows = {row["team"]: row for row in body["rows"]}
    assert (rows["north"]["resolved"], rows["north"]["sla_share"]) == (1, 1.0)
    assert rows["north"]["median_hours_to_resolution"] == 6.0
    assert (rows["south"]["open"], body["total"]["opened"]) == (1, 2)


@pytest.mark.parametrize(
    "query", ["by=agent", "since=yesterday", "since=2026-12-01&until=2026-11-01", "x=1"]
)
def test_bad_figure_queries_are_400(runtime, client, crm, query):
    response = client.get(f"{URL}/figures?{query}", headers=crm)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_query"


def test_an_update_delivered_twice_is_recorded_once(runtime, client, crm, survey_request):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 3)))
    update = {"status": "contacted", "updated_at": iso(NOW + timedelta(hours=1))}
    first = client.patch(f"{URL}/{follow_up_id}", json=update, headers=crm).get_json()
    again = client.patch(f"{URL}/{follow_up_id}", json=update, headers=crm).get_json()
    assert first["status"] == again["status"] == "contacted"
    assert [c["field"] for c in again["history"]] == ["opened", "status"]
