"""The survey's channel at intake: `"channel"` in the API, `--channel` on the command
line, a `survey_channel` CSV column; what each refuses."""

from __future__ import annotations

import pytest

from core.models import Channel, RequestState, SurveyRequest
from sms import conversation
from tests.api.conftest import stored_requests
from tests.api.test_survey_requests import URL, item
from tests.openapi import check_response


def test_a_request_may_ask_to_be_surveyed_by_text(runtime, client, auth):
    response = client.post(URL, json=item("crm-1", channel="sms"), headers=auth)
    body = response.get_json()
    assert (response.status_code, body["status"], body["channel"]) == (201, "accepted", "sms")
    check_response(URL, "POST", 201, body)
    row = stored_requests(runtime)["crm-1"]
    assert (row.channel, row.state) == (Channel.SMS, RequestState.SCHEDULED)
    read = client.get(f"{URL}/{body['request_id']}", headers=auth).get_json()
    check_response(f"{URL}/{{request_id}}", "GET", 200, read)
    assert read["channel"] == "sms"


def test_without_a_channel_the_survey_s_own_applies(runtime, client, auth):
    body = client.post(URL, json=item("crm-1"), headers=auth).get_json()
    assert body["channel"] == "voice"
    assert stored_requests(runtime)["crm-1"].channel is Channel.VOICE


@pytest.mark.parametrize("channel", ["SMS", "sms_fallback", "text", "", 1, True, ["sms"]])
def test_an_unknown_channel_is_an_invalid_field(runtime, client, auth, channel):
    body = client.post(URL, json=item("crm-1", channel=channel), headers=auth).get_json()
    assert (body["reason"], body["detail"]) == (
        "invalid_field",
        "channel must be one of voice, sms",
    )
    assert stored_requests(runtime) == {}


def test_an_in_call_survey_by_text_is_refused(runtime, client, auth):
    body = client.post(
        URL, json=item("crm-1", channel="sms", mode="in_call"), headers=auth
    ).get_json()
    assert (body["reason"], body["channel"]) == ("invalid_field", "sms")
    assert "an in-call survey is a voice survey" in body["detail"]
    assert stored_requests(runtime) == {}


def test_a_landline_is_not_texted(runtime, client, auth):
    body = client.post(
        URL, json=item("crm-1", phone="+442079460958", channel="sms"), headers=auth
    ).get_json()
    assert (body["reason"], body["detail"]) == (
        "uncallable_phone",
        "+442079460958 is a landline: it cannot take texts",
    )
    # By voice, the same number is fine.
    voice = client.post(URL, json=item("crm-2", phone="+442079460958"), headers=auth)
    assert voice.get_json()["status"] == "accepted"


def test_the_command_line_takes_the_channel(runtime, cli):
    result = cli(
        "enqueue", "--phone", "+14155550123", "--source-call-id", "crm-1", "--channel", "sms"
    )
    assert result.exit_code == 0, result.output
    assert stored_requests(runtime)["crm-1"].channel is Channel.SMS


def test_a_csv_file_names_the_channel_in_survey_channel(runtime, cli, tmp_path):
    csv = tmp_path / "calls.csv"
    csv.write_text(
        "phone,source_call_id,ended_at,survey_channel,channel\n"
        "+14155550123,crm-1,2026-11-23T14:05:00Z,sms,chat\n"
        "+14155550124,crm-2,2026-11-23T14:05:00Z,,voice\n"
        "+14155550125,crm-3,2026-11-23T14:05:00Z,pigeon,voice\n"
    )
    result = cli("import", str(csv))
    rows = stored_requests(runtime)
    assert rows["crm-1"].channel is Channel.SMS
    assert rows["crm-2"].channel is Channel.VOICE
    # A call log's own `channel` column is metadata, as it always was.
    assert rows["crm-1"].extra == {"channel": "chat"}
    assert "crm-3" not in rows
    assert "survey_channel must be voice or sms" in result.output


def test_a_request_answered_by_text_reads_back_as_the_spec_says(runtime, client, auth):
    body = client.post(URL, json=item("crm-1", channel="sms"), headers=auth).get_json()
    with runtime.db.session() as session:
        session.get(SurveyRequest, body["request_id"]).due_at = None
    note, _ = conversation.open_conversation(runtime, body["request_id"])
    assert note.startswith("texting")
    read = client.get(f"{URL}/{body['request_id']}", headers=auth).get_json()
    check_response(f"{URL}/{{request_id}}", "GET", 200, read)
    assert read["state"] == "texting"
    inbound = conversation.Inbound("SM" + "1" * 32, "+14155550123", "+15005550006", "9/10")
    assert conversation.receive(runtime, inbound).outcome == "answer"
    read = client.get(f"{URL}/{body['request_id']}", headers=auth).get_json()
    check_response(f"{URL}/{{request_id}}", "GET", 200, read)
    (answer,) = read["answers"]
    assert (answer["value"], answer["input"], answer["transcript"]) == (9, "text", "9/10")
    assert read["attempts"] == []
