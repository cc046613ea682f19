"""POST and GET /api/v1/survey-requests: auth, per-item decisions, whole-request errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core import apikeys
from core.models import Answer, CallAttempt, RequestState
from dialer.intake import CallEnded, accept_calls
from tests.api.conftest import DELAY, ENDED_AT, NOW, parse_time, stored_requests
from tests.conftest import PUBLIC_BASE_URL
from tests.openapi import check_response

URL = "/api/v1/survey-requests"


def item(source_call_id: str, phone: str = "+14155550123", **overrides) -> dict:
    return {
        "phone": phone,
        "source_call_id": source_call_id,
        "agent": "alice",
        "queue": "billing",
        "team": "north",
        "language": "en",
        "ended_at": ENDED_AT.isoformat(),
        "metadata": {"ticket": "T-9", "priority": 2, "vip": False, "score": 1.5, "note": None},
    } | overrides


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message"}
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


# -- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token ac_abc", "ac_abc"],
)
def test_a_missing_or_malformed_authorization_header_is_401_with_a_challenge(
    client, api_key, header
):
    headers = {} if header is None else {"Authorization": header}
    response = client.post(URL, json=item("crm-1"), headers=headers)
    assert_json_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_key_is_401(client, api_key):
    response = client.post(URL, json=item("crm-1"), headers={"Authorization": "Bearer ac_nope"})
    assert_json_error(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_key_revoked_with_the_cli_is_401(runtime, client, cli):
    key = cli("apikey", "create", "crm").stdout.splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(f"{URL}/1", headers=headers).status_code == 404  # works until revoked
    assert cli("apikey", "revoke", "crm").exit_code == 0
    assert_json_error(client.post(URL, json=item("crm-1"), headers=headers), 401)
    assert_json_error(client.get(f"{URL}/1", headers=headers), 401)
    assert stored_requests(runtime) == {}


def test_the_scheme_is_case_insensitive(client, api_key):
    response = client.post(URL, json=item("crm-1"), headers={"Authorization": f"bearer {api_key}"})
    assert response.status_code == 201


def test_use_of_a_key_is_recorded(runtime, client, auth):
    client.post(URL, json=item("crm-1"), headers=auth)
    with runtime.db.session() as session:
        (key,) = apikeys.list_keys(session)
    assert key.last_used_at is not None


# -- one request ------------------------------------------------------------------------


def test_a_single_accepted_request_is_201_and_stored_as_scheduled(runtime, client, auth):
    response = client.post(URL, json=item("crm-1"), headers=auth)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "accepted"
    assert body["source_call_id"] == "crm-1"
    assert body["reason"] is None
    assert body["planned_call_at"].endswith("Z")
    planned = parse_time(body["planned_call_at"])
    assert planned >= ENDED_AT + DELAY
    assert planned >= NOW

    row = stored_requests(runtime)["crm-1"]
    assert row.id == body["request_id"]
    assert row.state is RequestState.SCHEDULED
    assert row.due_at == planned
    assert row.phone == "+14155550123"
    assert row.survey_name == "post-call"  # omitted survey: the default one
    assert row.extra == {"ticket": "T-9", "priority": 2, "vip": False, "score": 1.5, "note": None}
    assert row.call_ended_at == ENDED_AT


def test_a_single_rejected_request_is_200_with_its_reason(runtime, client, auth):
    response = client.post(URL, json=item("crm-1", phone="+1 415"), headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body == {
        "source_call_id": "crm-1",
        "status": "rejected",
        "request_id": None,
        "planned_call_at": None,
        "reason": "invalid_phone",
        "detail": body["detail"],
        "mode": "callback",
        "channel": "voice",
        "transfer": None,
    }
    assert "+1 415" in body["detail"]
    assert stored_requests(runtime) == {}


@pytest.mark.parametrize("ended_at", ["2026-11-23T14:58:00Z", "2026-11-23T09:58:00-05:00"])
def test_offsets_are_honoured(runtime, client, auth, ended_at):
    response = client.post(URL, json=item("crm-1", ended_at=ended_at), headers=auth)
    assert response.status_code == 201
    assert stored_requests(runtime)["crm-1"].call_ended_at == ENDED_AT


def test_a_suppressed_call_is_rejected_but_stored_with_its_reason(runtime, client, auth):
    client.post(URL, json=item("crm-1"), headers=auth)
    response = client.post(URL, json=item("crm-2"), headers=auth)  # same number
    body = response.get_json()
    assert (response.status_code, body["status"], body["reason"]) == (
        200,
        "rejected",
        "survey_under_way",
    )
    row = stored_requests(runtime)["crm-2"]
    assert row.id == body["request_id"]
    assert row.state is RequestState.SUPPRESSED
    assert row.suppression_reason == "survey_under_way"


# -- batches ----------------------------------------------------------------------------

# Each bad item sits between two good ones; the good ones use other numbers, because a
# second call to a number with a survey under way is suppressed.
BAD_ITEMS = [
    ("invalid phone", item("bad", phone="+1 415"), "invalid_phone", "+1 415"),
    ("premium-rate phone", item("bad", phone="+19005550123"), "uncallable_phone", None),
    ("unknown survey", item("bad", survey="no-such-survey"), "unknown_survey", "no-such-survey"),
    ("duplicate in batch", item("good-1", phone="+14155550150"), "duplicate_source_call_id", None),
    ("duplicate in db", item("stored-1", phone="+14155550150"), "duplicate_source_call_id", None),
    ("ended_at no offset", item("bad", ended_at="2026-11-23T14:58:00"), "invalid_field", "ended_at"),
    ("ended_at a date", item("bad", ended_at="2026-11-23"), "invalid_field", "ended_at"),
    ("ended_at garbage", item("bad", ended_at="yesterday"), "invalid_field", "ended_at"),
    ("ended_at a number", item("bad", ended_at=1732370000), "invalid_field", "ended_at"),
    ("ended_at year 9999", item("bad", ended_at="9999-12-31T23:59:59-05:00"), "invalid_field", "ended_at"),
    ("ended_at missing", {k: v for k, v in item("bad").items() if k != "ended_at"}, "invalid_field", "ended_at"),
    ("phone missing", {k: v for k, v in item("bad").items() if k != "phone"}, "invalid_field", "phone"),
    ("phone null", item("bad", phone=None), "invalid_field", "phone"),
    ("phone a number", item("bad", phone=14155550123), "invalid_field", "phone"),
    ("source id missing", {k: v for k, v in item("bad").items() if k != "source_call_id"}, "invalid_field", "source_call_id"),
    ("source id a number", item(12345), "invalid_field", "source_call_id"),
    ("source id empty", item(""), "invalid_field", "source_call_id"),
    ("source id with NUL", item("bad\x00"), "invalid_field", "source_call_id"),
    ("agent a lone surrogate", item("bad", agent="al\ud800ice"), "invalid_field", "agent"),
    ("metadata with NUL", item("bad", metadata={"note": "a\x00b"}), "invalid_field", "metadata"),
    ("agent a list", item("bad", agent=["alice"]), "invalid_field", "agent"),
    ("team a bool", item("bad", team=True), "invalid_field", "team"),
    ("language wrong", item("bad", language="english"), "invalid_field", "language"),
    ("agent too long", item("bad", agent="a" * 201), "invalid_field", "agent"),
    ("metadata a list", item("bad", metadata=["T-9"]), "invalid_field", "metadata"),
    ("metadata a string", item("bad", metadata="T-9"), "invalid_field", "metadata"),
    ("metadata nested", item("bad", metadata={"ticket": {"id": 9}}), "invalid_field", "metadata"),
    ("metadata list value", item("bad", metadata={"tags": ["a"]}), "invalid_field", "metadata"),
    ("unknown field", item("bad", colour="blue"), "invalid_field", "colour"),
    ("not an object", "crm-9", "invalid_field", "JSON object"),
    ("null item", None, "invalid_field", "JSON object"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "reason", "detail"),
    [case[1:] for case in BAD_ITEMS],
    ids=[case[0] for case in BAD_ITEMS],
)
def test_a_batch_decides_each_item_on_its_own(runtime, client, auth, bad, reason, detail):
    accept_calls(runtime, [CallEnded("+12125550199", "stored-1", ENDED_AT)])
    batch = [item("good-1", phone="+14155550101"), bad, item("good-2", phone="+14155550102")]
    response = client.post(URL, json={"requests": batch}, headers=auth)

    assert response.status_code == 200
    body = response.get_json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    good_1, rejected, good_2 = body["results"]
    assert [good_1["source_call_id"], good_2["source_call_id"]] == ["good-1", "good-2"]
    assert good_1["status"] == good_2["status"] == "accepted"
    assert parse_time(good_1["planned_call_at"]) >= ENDED_AT + DELAY
    assert rejected["status"] == "rejected"
    assert rejected["reason"] == reason
    assert rejected["planned_call_at"] is None
    if detail:
        assert detail in rejected["detail"]

    rows = stored_requests(runtime)
    assert set(rows) == {"stored-1", "good-1", "good-2"}
    assert rows["good-1"].id == good_1["request_id"]
    assert rows["good-1"].phone == "+14155550101"  # not the duplicate's number
    assert rows["good-2"].state is RequestState.SCHEDULED


def test_a_number_too_large_for_a_float_is_an_invalid_metadata_value(runtime, client, auth):
    body = json.dumps(item("crm-1", metadata={"score": 0})).replace('"score": 0', '"score": 1e999')
    response = client.post(URL, data=body, content_type="application/json", headers=auth)
    assert response.get_json()["reason"] == "invalid_field"
    assert "score" in response.get_json()["detail"]
    assert stored_requests(runtime) == {}


def test_a_batch_of_1000_is_accepted(runtime, client, auth):
    batch = [item(f"crm-{n}", phone="+1 415 555 0123") for n in range(1000)]
    response = client.post(URL, json={"requests": batch}, headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert len(body["results"]) == 1000
    assert body["accepted"] == 1  # the rest: a survey for that number is under way
    assert {r["reason"] for r in body["results"][1:]} == {"survey_under_way"}
    assert len(stored_requests(runtime)) == 1000


def test_a_batch_of_1001_is_413_and_stores_nothing(runtime, client, auth):
    batch = [item(f"crm-{n}") for n in range(1001)]
    response = client.post(URL, json={"requests": batch}, headers=auth)
    assert_json_error(response, 413, "too_many_requests_in_batch")
    assert stored_requests(runtime) == {}


def test_a_body_over_the_size_limit_is_413(runtime, client, auth):
    body = json.dumps(item("crm-1", agent="a" * (2 * 1024 * 1024)))
    response = client.post(URL, data=body, content_type="application/json", headers=auth)
    assert_json_error(response, 413, "payload_too_large")
    assert stored_requests(runtime) == {}


# -- whole-request problems -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ("phone=+14155550123", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ('{"phone": "+14155550123"}', "text/plain", 415, "unsupported_media_type"),
        ('{"phone": "+14155550123"}', None, 415, "unsupported_media_type"),
        ("", "application/json", 400, "invalid_json"),
        ("not json", "application/json", 400, "invalid_json"),
        ('{"phone": ', "application/json", 400, "invalid_json"),
        (b"\xff\xfe\x00junk", "application/json", 400, "invalid_json"),
        ('{"phone": NaN}', "application/json", 400, "invalid_json"),
        ("[" * 100_000, "application/json", 400, "invalid_json"),
        ("[]", "application/json", 400, "invalid_body"),
        ('"crm-1"', "application/json", 400, "invalid_body"),
        ("null", "application/json", 400, "invalid_body"),
        ('{"requests": []}', "application/json", 400, "invalid_body"),
        ('{"requests": {"phone": "+14155550123"}}', "application/json", 400, "invalid_body"),
        ('{"requests": null}', "application/json", 400, "invalid_body"),
        ('{"requests": [{}], "dry_run": true}', "application/json", 400, "invalid_body"),
    ],
)
def test_whole_request_problems_are_json_errors(
    runtime, client, auth, data, content_type, status, code
):
    headers = dict(auth)
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post(URL, data=data, headers=headers)
    assert_json_error(response, status, code)
    assert stored_requests(runtime) == {}


def test_a_json_content_type_with_a_charset_or_suffix_is_accepted(client, auth):
    for n, content_type in enumerate(
        ["application/json; charset=utf-8", "application/vnd.crm+json"]
    ):
        body = json.dumps(item(f"crm-{n}", phone=f"+1415555010{n}"))
        response = client.post(URL, data=body, content_type=content_type, headers=auth)
        assert response.status_code == 201


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/no-such-thing", 404, "not_found"),
        ("GET", f"{URL}/not-a-number", 404, "not_found"),
        ("GET", f"{URL}/99999999999999999999", 404, "not_found"),
        ("GET", f"{URL}/123456", 404, "not_found"),
        ("DELETE", f"{URL}/1", 405, "method_not_allowed"),
        ("PUT", URL, 405, "method_not_allowed"),
    ],
)
def test_unknown_paths_and_methods_are_json_errors(client, auth, method, path, status, code):
    assert_json_error(client.open(path, method=method, headers=auth), status, code)


def test_an_unexpected_failure_is_a_json_500_without_a_stack_trace(app, client, auth, monkeypatch):
    def broken(runtime, calls):
        raise RuntimeError("database on fire at /srv/secret/path.py line 12")

    monkeypatch.setattr("aftercall.web.intake_api.accept_calls", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.post(URL, json=item("crm-1"), headers=auth)
    error = assert_json_error(response, 500, "internal_error")
    assert "fire" not in error["message"]
    assert b"Traceback" not in response.data


def test_other_paths_keep_their_own_errors(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


# -- GET --------------------------------------------------------------------------------


def test_get_returns_the_request_with_its_attempts_and_answers(runtime, client, auth):
    created = client.post(URL, json=item("crm-1"), headers=auth).get_json()
    request_id = created["request_id"]
    with runtime.db.session() as session:
        # What the dialer and ivr/ record during the call.
        request = session.get(type(stored_requests(runtime)["crm-1"]), request_id)
        request.state = RequestState.COMPLETED
        attempt = CallAttempt(
            request_id=request_id,
            number=1,
            call_sid="CA" + "1" * 32,
            status="completed",
            answered_by="human",
            started_at=NOW,
            answered_at=NOW,
            ended_at=NOW,
            duration_seconds=42,
        )
        session.add(attempt)
        session.flush()
        session.add(
            Answer(
                request_id=request_id,
                attempt_id=attempt.id,
                survey_version_id=request.survey_version_id,
                question_key="nps",
                kind="nps",
                value=9,
                keys="9",
                received_at=NOW,
            )
        )

    response = client.get(f"{URL}/{request_id}", headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == request_id
    assert body["state"] == "completed"
    assert body["phone"] == "+14155550123"
    assert body["source_call_id"] == "crm-1"
    assert (body["agent"], body["queue"], body["team"], body["language"]) == (
        "alice",
        "billing",
        "north",
        "en",
    )
    assert parse_time(body["ended_at"]) == ENDED_AT
    assert body["survey"] == "post-call"
    assert isinstance(body["survey_version"], int)
    assert body["suppression_reason"] is None
    assert (body["mode"], body["attribution"]) == ("callback", None)
    assert body["planned_call_at"] == created["planned_call_at"]
    assert body["metadata"]["ticket"] == "T-9"
    assert body["attempts"] == [
        {
            "number": 1,
            "call_sid": "CA" + "1" * 32,
            "status": "completed",
            "answered_by": "human",
            "started_at": "2026-11-23T15:00:00Z",
            "answered_at": "2026-11-23T15:00:00Z",
            "ended_at": "2026-11-23T15:00:00Z",
            "duration_seconds": 42,
            "error_code": None,
            "direction": "outbound",
        }
    ]
    assert body["answers"] == [
        {
            "question_key": "nps",
            "kind": "nps",
            "value": 9,
            "keys": "9",
            "recording_url": None,
            "transcript": None,
            "input": None,
            "confidence": None,
            "received_at": "2026-11-23T15:00:00Z",
        }
    ]


def test_get_of_a_suppressed_request_says_why(client, auth):
    client.post(URL, json=item("crm-1"), headers=auth)
    suppressed = client.post(URL, json=item("crm-2"), headers=auth).get_json()
    body = client.get(f"{URL}/{suppressed['request_id']}", headers=auth).get_json()
    assert (body["state"], body["suppression_reason"]) == ("suppressed", "survey_under_way")
    assert body["planned_call_at"] is None
    assert (body["attempts"], body["answers"]) == ([], [])


def test_get_of_an_unknown_id_is_a_json_404(client, auth):
    assert_json_error(client.get(f"{URL}/424242", headers=auth), 404, "not_found")


# -- no body makes it fail --------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_field_values = st.one_of(
    _json,
    st.sampled_from(
        [
            "+14155550123",
            "+12125550123",
            "+1 900 555 0123",
            "2026-11-23T14:58:00Z",
            "post-call",
            "es",
            "",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
)
_items = (
    st.fixed_dictionaries(
        {},
        optional={
            name: _field_values
            for name in (
                "phone",
                "source_call_id",
                "agent",
                "queue",
                "team",
                "language",
                "ended_at",
                "survey",
                "metadata",
            )
        },
    )
    | _json
)
# A valid item with one field replaced by anything or dropped: reaches intake's own checks.
_nearly_valid = st.builds(
    lambda source_call_id, name, value: {
        key: val for key, val in (item(source_call_id) | {name: value}).items() if val != "<drop>"
    },
    st.text(min_size=1, max_size=12),
    st.sampled_from([*item("x"), "requests", "extra"]),
    _field_values | st.just("<drop>"),
)
_items = _items | _nearly_valid
_bodies = _items | st.fixed_dictionaries({"requests": st.lists(_items, max_size=5)}) | _json


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies)
def test_random_json_bodies_never_cause_a_server_error(client, auth, body):
    data = json.dumps(body, allow_nan=True)  # NaN and Infinity too: Python writes them
    response = client.post(URL, data=data, content_type="application/json", headers=auth)
    event(f"HTTP {response.status_code}")  # pytest --hypothesis-show-statistics
    assert response.status_code in {200, 201, 400, 413}
    assert response.mimetype == "application/json"
    parsed = response.get_json()
    if response.status_code >= 400:
        assert set(parsed["error"]) == {"code", "message"}
    elif "results" in parsed:
        assert parsed["accepted"] + parsed["rejected"] == len(parsed["results"])
    else:
        assert parsed["status"] in {"accepted", "rejected"}


def test_a_key_reads_back_only_the_requests_it_sent(runtime, client, auth):
    with runtime.db.session() as session:
        other = {"Authorization": f"Bearer {apikeys.create_key(session, 'other-crm')}"}
    mine = client.post(URL, json=item("crm-1"), headers=auth).get_json()["request_id"]
    theirs = client.post(URL, json=item("crm-2", phone="+14155550199"), headers=other)
    theirs = theirs.get_json()["request_id"]
    assert client.get(f"{URL}/{mine}", headers=auth).status_code == 200
    # Another key's request looks exactly like one that does not exist.
    assert_json_error(client.get(f"{URL}/{theirs}", headers=auth), 404, "not_found")
    assert client.get(f"{URL}/{theirs}", headers=other).status_code == 200


def test_requests_from_the_cli_are_not_readable_through_the_api(runtime, client, auth, cli):
    result = cli("enqueue", "--phone", "+14155550123", "--source-call-id", "cli-1",
                 "--ended-at", "2026-11-23T14:00:00Z")  # fmt: skip
    assert result.exit_code == 0, result.output
    request_id = stored_requests(runtime)["cli-1"].id
    assert_json_error(client.get(f"{URL}/{request_id}", headers=auth), 404, "not_found")


def test_an_in_call_request_answers_with_its_transfer_as_the_spec_says(runtime, client, auth):
    response = client.post(URL, json=item("crm-1", mode="in_call"), headers=auth)
    assert response.status_code == 201
    body = response.get_json()
    check_response(URL, "POST", 201, body)
    assert (body["mode"], body["planned_call_at"]) == ("in_call", None)
    transfer = body["transfer"]
    assert transfer["url"] == f"{PUBLIC_BASE_URL}/ivr/inbound?token={transfer['token']}"
    assert transfer["digits"] == transfer["token"] + "#"
    read = client.get(f"{URL}/{body['request_id']}", headers=auth)
    check_response(f"{URL}/{{request_id}}", "GET", 200, read.get_json())
    assert (read.get_json()["state"], read.get_json()["mode"]) == ("awaiting_transfer", "in_call")
    assert read.get_json()["attribution"] is None


@pytest.mark.parametrize("mode", ["in-call", "IN_CALL", "", 1, True, ["in_call"]])
def test_an_unknown_mode_is_an_invalid_field(runtime, client, auth, mode):
    response = client.post(URL, json=item("crm-1", mode=mode), headers=auth)
    body = response.get_json()
    assert (response.status_code, body["reason"]) == (200, "invalid_field")
    assert "mode must be one of callback, in_call" in body["detail"]
    assert stored_requests(runtime) == {}
