"""The report API and `aftercall report`, with every response checked against the OpenAPI file.

API keys' scopes: only `reports:full` keys get customers' numbers and recording links,
`reports` keys get them masked (every body is searched for the seeded numbers), and a
valid key without a report scope is refused with 403.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import timedelta

import pytest
from click.testing import CliRunner

from aftercall.cli import main
from core import apikeys
from core.models import Answer, RequestState
from tests.api.conftest import NOW as API_NOW
from tests.openapi import check_response, documented_paths
from tests.scoring.test_report import START, _version_id, add

RECORDING = "https://api.twilio.test/RE"
SCOPES = {
    "intake": ["intake"],
    "reports": ["reports"],
    "full": ["reports:full"],
    "everything": ["intake", "reports:full"],
}


def bearer(runtime, name: str, scopes: list[str]) -> dict[str, str]:
    with runtime.db.session() as session:
        return {"Authorization": f"Bearer {apikeys.create_key(session, name, scopes)}"}


@pytest.fixture
def auth(runtime):
    return bearer(runtime, "bi", ["reports:full"])


@pytest.fixture
def keys(runtime) -> dict[str, dict[str, str]]:
    """A key for each kind of holder, by the names of SCOPES."""
    return {name: bearer(runtime, name, scopes) for name, scopes in SCOPES.items()}


@pytest.fixture
def sample(runtime):
    """Two teams, three agents, two weeks of answers."""
    with runtime.db.session() as session:
        rows = [
            ("alice", "north", 0, [10, 5]), ("alice", "north", 1, [9, 4]),
            ("bob", "north", 2, [3, 2]), ("carol", "south", 3, [8, 3]),
            ("carol", "south", 8, [0, 1]), ("alice", "north", 9, [6, 2]),
        ]  # fmt: skip
        requests = [
            add(session, i, agent=agent, team=team, ended=START + timedelta(days=days),
                answers=[("nps", "nps", nps), ("csat", "csat", csat)])
            for i, (agent, team, days, (nps, csat)) in enumerate(rows)
        ]  # fmt: skip
        add(session, 99, agent="bob", team="north", ended=START, state=RequestState.NO_ANSWER)
        # Detractors' recorded comments (requests 2 and 4): one reads out a number.
        version_id = _version_id(session)
        for index, transcript in [(2, "call me on 415 555 0199"), (4, "too slow")]:
            session.add(
                Answer(request_id=requests[index].id, attempt_id=requests[index].attempts[0].id,
                       survey_version_id=version_id, question_key="improve", kind="comment",
                       transcript=transcript, recording_url=f"{RECORDING}{index}.mp3")
            )  # fmt: skip


def sample_phones() -> list[str]:
    """Every seeded number (add() numbers request i +1415555000i) in the forms it could
    take in a body: E.164, without +, national, local."""
    forms = []
    for index in [*range(6), 99]:
        e164 = f"+1415555{index:04d}"
        forms += [e164, e164[1:], e164[2:], e164[-7:], f"555-{e164[-4:]}", f"555 {e164[-4:]}"]
    return forms


def get(client, auth, path):
    response = client.get(path, headers=auth)
    body = response.get_json()
    check_response(path, "GET", response.status_code, body)
    return response.status_code, body


@pytest.mark.usefixtures("sample")
def test_scores_by_agent(client, auth):
    status, body = get(client, auth, "/api/v1/reports/scores?by=agent")
    assert status == 200
    rows = {row["agent"]: row for row in body["rows"]}
    assert set(rows) == {"alice", "bob", "carol"}
    assert (rows["alice"]["promoters"], rows["alice"]["detractors"]) == (2, 1)
    assert rows["alice"]["nps"] == pytest.approx(33.3)
    assert rows["bob"]["received"] == 2 and rows["bob"]["completed"] == 1
    assert body["total"]["nps_responses"] == 6
    assert body["total"]["nps_reliable"] is False


@pytest.mark.usefixtures("sample")
def test_scores_by_week_in_a_date_range(client, auth):
    # 2026-03-01 is a Sunday: weeks W09 (1 Mar) and W10 (2-8 Mar).
    status, body = get(
        client, auth, "/api/v1/reports/scores?by=week&since=2026-03-01&until=2026-03-08"
    )
    assert status == 200
    assert [(r["week"], r["nps_responses"]) for r in body["rows"]] == [
        ("2026-W09", 1),
        ("2026-W10", 3),
    ]
    assert body["query"]["since"] == "2026-03-01T00:00:00Z"
    assert body["query"]["until"] == "2026-03-09T00:00:00Z"  # the last day is included


@pytest.mark.usefixtures("sample")
def test_compare_with_the_previous_period(client, auth):
    status, body = get(
        client, auth, "/api/v1/reports/scores?since=2026-03-06&until=2026-03-12&compare=previous"
    )
    assert status == 200
    assert body["total"]["nps_responses"] == 2  # days 8 and 9
    assert body["previous"]["query"]["since"] == "2026-02-27T00:00:00Z"  # 7 days before
    assert body["previous"]["total"]["nps_responses"] == 4


@pytest.mark.usefixtures("sample")
def test_compare_each_agent_with_the_team(client, auth):
    status, body = get(client, auth, "/api/v1/reports/scores?by=agent&compare=team")
    assert status == 200
    bob = next(row for row in body["rows"] if row["agent"] == "bob")
    assert bob["team"] == "north"
    assert bob["nps"] == -100.0
    assert bob["team_figures"]["nps_responses"] == 4  # alice x3 and bob
    assert bob["team_figures"]["nps"] == pytest.approx(0.0)


@pytest.mark.usefixtures("sample")
def test_detractors_page(client, auth):
    status, body = get(client, auth, "/api/v1/reports/detractors?limit=2")
    assert status == 200
    assert [d["answers"]["nps"] for d in body["detractors"]] == [6, 0]
    status, body = get(client, auth, "/api/v1/reports/detractors?limit=2&offset=1&team=north")
    assert [d["agent"] for d in body["detractors"]] == ["bob"]


@pytest.mark.parametrize(
    "query",
    [
        "by=colour", "by=day,week", "since=yesterday", "since=2026-03-01T10:00",
        "since=2026-03-05&until=2026-03-01", "compare=team", "compare=sideways",
        "compare=previous", "limit=0", "agent=%00", "sinec=2026-03-01", "since=",
        "since=20260301", "since=2026-W09", "since=2026-02-30", "since=2026-03-01t10:00:00z",
        "since=%202026-03-01", "by=agent,,team", "by=meta:%00", "limit=%C2%B2", "offset=%D9%A3",
    ],
)  # fmt: skip
def test_bad_report_queries_are_400_with_a_reason(client, auth, query):
    on_page = query.startswith(("limit", "offset"))
    path = "/api/v1/reports/detractors" if on_page else "/api/v1/reports/scores"
    status, body = get(client, auth, f"{path}?{query}")
    assert status == 400
    assert body["error"]["code"] == "invalid_query"


def test_reports_need_an_api_key(client):
    response = client.get("/api/v1/reports/scores")
    assert response.status_code == 401
    check_response("/api/v1/reports/scores", "GET", 401, response.get_json())


def test_every_api_route_is_documented(app):
    routes = {
        rule.rule.replace("<int:", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
    }
    documented = {path.replace("{id}", "{request_id}") for path in documented_paths()}
    assert routes <= documented, routes - documented


def test_intake_responses_match_the_spec(client, keys, runtime):
    auth = keys["intake"]
    runtime.settings = runtime.settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    call = {
        "phone": "+14155550123",
        "source_call_id": "crm-1",
        "ended_at": "2026-11-23T10:00:00-08:00",
    }
    response = client.post("/api/v1/survey-requests", json=call, headers=auth)
    check_response("/api/v1/survey-requests", "POST", response.status_code, response.get_json())
    batch = {"requests": [call, {**call, "phone": "not a phone", "source_call_id": "crm-2"}]}
    response = client.post("/api/v1/survey-requests", json=batch, headers=auth)
    check_response("/api/v1/survey-requests", "POST", response.status_code, response.get_json())
    request_id = response.get_json()["results"][0]["request_id"] or 1
    response = client.get(f"/api/v1/survey-requests/{request_id}", headers=auth)
    check_response(
        f"/api/v1/survey-requests/{request_id}", "GET", response.status_code, response.get_json()
    )
    response = client.get("/api/v1/survey-requests/999999", headers=auth)
    check_response(
        "/api/v1/survey-requests/999999", "GET", response.status_code, response.get_json()
    )


@pytest.mark.usefixtures("sample")
def test_report_command_formats(runtime, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    runner = CliRunner()
    table = runner.invoke(main, ["report", "--by", "agent"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["agent", "NPS", "n"]
    # Three answers: the score with its margin, marked, and a note saying what the mark means.
    assert any(re.match(r"alice\s+[+-]\d+ ±\d+\*\s+3\s", line) for line in lines), lines
    assert lines[-2].startswith("total")
    assert lines[-1].startswith("* fewer than 30 answers")

    as_json = runner.invoke(main, ["report", "--by", "team", "--format", "json"])
    rows = json.loads(as_json.output)["rows"]
    assert [(r["team"], r["nps_responses"]) for r in rows] == [("north", 4), ("south", 2)]

    as_csv = runner.invoke(main, ["report", "--by", "agent,week", "--format", "csv"])
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert {(r["agent"], r["week"]) for r in parsed} >= {
        ("alice", "2026-W09"),
        ("carol", "2026-W11"),
    }
    assert all(r["nps_responses"] for r in parsed)

    bad = runner.invoke(main, ["report", "--by", "colour"])
    assert bad.exit_code == 2
    assert "cannot group by 'colour'" in bad.output


@pytest.mark.usefixtures("sample")
def test_report_command_compares_with_the_previous_period(runtime, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    args = ["report", "--since", "2026-03-06", "--until", "2026-03-12", "--compare", "previous"]
    result = CliRunner().invoke(main, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["rows"][0]["nps_responses"] == 2
    assert body["previous"]["rows"][0]["nps_responses"] == 4
    table = CliRunner().invoke(main, args)
    assert "Previous period (2026-02-27 to 2026-03-05):" in table.output
    assert CliRunner().invoke(main, [*args, "--format", "csv"]).exit_code == 2


def test_each_api_key_is_rate_limited(client, auth, runtime, redis_url):
    runtime.settings = runtime.settings.with_overrides(redis_url=redis_url, api_rate_limit=3)
    if time.time() % 60 > 58:  # the counter is per minute: don't straddle two
        time.sleep(2.5)
    statuses = [client.get("/api/v1/reports/scores", headers=auth).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    limited = client.get("/api/v1/reports/scores", headers=auth)
    check_response("/api/v1/reports/scores", "GET", 429, limited.get_json())
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    # Another key has its own allowance.
    other = bearer(runtime, "other", ["reports"])
    assert client.get("/api/v1/reports/scores", headers=other).status_code == 200


# -- scopes ---------------------------------------------------------------------------


@pytest.mark.usefixtures("sample")
def test_a_reports_key_never_receives_a_number_or_a_recording(client, keys):
    bodies = []
    for query in ["", "?limit=500", "?team=north", "?limit=1&offset=2", "?contact=full"]:
        response = client.get(f"/api/v1/reports/detractors{query}", headers=keys["reports"])
        if query == "?contact=full":  # asking for more is an unknown parameter, not a way in
            assert response.status_code == 400
            continue
        check_response("/api/v1/reports/detractors", "GET", 200, response.get_json())
        assert response.get_json()["contact"] == "masked"
        bodies.append(response.get_data(as_text=True))
    for path in [
        "/api/v1/reports/scores?by=agent,team",
        "/api/v1/reports/scores?compare=team&by=agent",
    ]:
        bodies.append(client.get(path, headers=keys["reports"]).get_data(as_text=True))
    text = "".join(bodies)
    assert [form for form in sample_phones() if form in text] == []
    assert "twilio" not in text and "0199" not in text
    entries = client.get("/api/v1/reports/detractors", headers=keys["reports"]).get_json()
    phones = [entry["phone"] for entry in entries["detractors"]]
    assert phones and all(phone.startswith("+1 415 ••• ••") for phone in phones)
    comments = {entry["comment"] for entry in entries["detractors"]}
    assert "call me on ••• ••• ••••" in comments and "too slow" in comments


@pytest.mark.usefixtures("sample")
@pytest.mark.parametrize("key", ["full", "everything"])
def test_a_reports_full_key_gets_numbers_and_recordings(client, keys, key):
    status, body = get(client, keys[key], "/api/v1/reports/detractors?limit=500")
    assert status == 200 and body["contact"] == "full"
    by_id = {entry["request_id"]: entry for entry in body["detractors"]}
    assert all(entry["phone"].startswith("+1415555") for entry in by_id.values())
    recordings = {entry["recording_url"] for entry in by_id.values()} - {None}
    assert recordings == {f"{RECORDING}2.mp3", f"{RECORDING}4.mp3"}
    assert "call me on 415 555 0199" in {entry["comment"] for entry in by_id.values()}


@pytest.mark.parametrize("path", ["/api/v1/reports/scores", "/api/v1/reports/detractors"])
def test_an_intake_key_cannot_read_reports(client, keys, path):
    status, body = get(client, keys["intake"], path)
    assert status == 403
    assert body["error"]["code"] == "forbidden"
    assert "reports" in body["error"]["message"]
    challenge = client.get(path, headers=keys["intake"]).headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge


def test_a_reports_key_cannot_send_or_read_survey_requests(client, keys, runtime):
    runtime.settings = runtime.settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    # On the API tests' pinned clock, inside the number's calling hours: a call that ended
    # minutes before the wall clock's now was refused (validity_expired) at night.
    runtime.now = lambda: API_NOW
    ended = (API_NOW - timedelta(minutes=5)).isoformat()
    call = {"phone": "+14155550123", "source_call_id": "crm-1", "ended_at": ended}
    for name in ("reports", "full"):
        response = client.post("/api/v1/survey-requests", json=call, headers=keys[name])
        check_response("/api/v1/survey-requests", "POST", 403, response.get_json())
        assert response.status_code == 403
    accepted = client.post("/api/v1/survey-requests", json=call, headers=keys["intake"])
    assert accepted.status_code == 201
    path = f"/api/v1/survey-requests/{accepted.get_json()['request_id']}"
    response = client.get(path, headers=keys["reports"])
    check_response(path, "GET", 403, response.get_json())
    assert "5550123" not in response.get_data(as_text=True)
    # reports:full sees every number anyway, and reads any request (an alert's link).
    for name in ("intake", "full"):
        assert client.get(path, headers=keys[name]).status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer ac_not-a-key", "Bearer ", "Basic dXNlcjpwYXNz", "ac_no-scheme"],
)
def test_a_bad_key_is_401_before_any_scope_is_looked_at(client, header):
    for path in ["/api/v1/reports/detractors", "/api/v1/survey-requests/1"]:
        response = client.get(path, headers={"Authorization": header})
        assert response.status_code == 401
        check_response(path, "GET", 401, response.get_json())


@pytest.mark.usefixtures("sample")
def test_a_new_scope_applies_from_the_next_request(client, keys, runtime):
    def contact() -> str | int:
        response = client.get("/api/v1/reports/detractors", headers=keys["reports"])
        return (
            response.get_json()["contact"] if response.status_code == 200 else response.status_code
        )

    assert contact() == "masked"
    with runtime.db.session() as session:
        apikeys.set_scopes(session, "reports", ["reports:full"])
    assert contact() == "full"
    with runtime.db.session() as session:
        apikeys.set_scopes(session, "reports", ["intake"])
    assert contact() == 403
    with runtime.db.session() as session:
        apikeys.revoke_key(session, "reports")
    assert contact() == 401
