"""Forged, unsigned, tampered and unknown webhooks: 403 or a polite goodbye, nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from aftercall.web import create_app
from aftercall.wiring import runtime_from_settings
from core.config import Settings
from core.models import Answer, CallEvent, OptOut
from tests.conftest import PUBLIC_BASE_URL, sign
from tests.ivr.conftest import SignedCall


def count_rows(runtime):
    with runtime.db.session() as session:
        return tuple(
            session.scalar(select(func.count(model.id))) for model in (Answer, CallEvent, OptOut)
        )


@pytest.mark.parametrize(
    "tamper",
    ["unsigned", "wrong-token", "changed-digits", "changed-url", "internal-url"],
)
def test_forged_webhooks_are_refused_and_write_nothing(call, runtime, tamper):
    c = call()
    url = f"{c.base}/questions/nps?try=1"
    params = c.params(Digits="*")
    signature = {
        "unsigned": "",
        "wrong-token": "bm90IHRoZSByaWdodCBzaWduYXR1cmU=",
        # Signed for "9", replayed with "*": the signature covers the parameters.
        "changed-digits": sign(url, c.params(Digits="9")),
        "changed-url": sign(f"{c.base}/questions/nps?try=3", params),
        # Signed for the address the app sees behind the proxy, not the public one.
        "internal-url": sign(url.replace(PUBLIC_BASE_URL, "http://localhost"), params),
    }[tamper]
    reply = c.post(url, params, signature=signature)
    assert reply.status == 403
    assert count_rows(runtime) == (0, 0, 0)


@pytest.mark.parametrize("endpoint", ["start", "status", "amd", "voicemail", "questions/nps"])
def test_every_voice_endpoint_requires_a_signature(client, make_attempt, endpoint):
    attempt = make_attempt()
    response = client.post(
        f"/voice/attempts/{attempt.id}/{endpoint}", data={"CallSid": attempt.call_sid}
    )
    assert response.status_code == 403


def unavailable(reply):
    assert reply.status == 200
    assert reply.verbs() == ["Say", "Hangup"]
    assert "not available" in reply.says()[0]


def test_signed_webhook_for_an_unknown_attempt_gets_a_goodbye(client, runtime):
    ghost = SignedCall(client, 999_999, "CA" + "f" * 32, "+14155550123")
    unavailable(ghost.start())
    unavailable(ghost.post(f"{ghost.base}/questions/nps?try=1", ghost.params(Digits="9")))
    assert ghost.status("completed", 3).status == 200
    assert count_rows(runtime) == (0, 0, 0)


def test_a_call_sid_that_does_not_belong_to_the_attempt_is_unknown(call, runtime):
    c = call()
    c.call_sid = "CA" + "e" * 32
    unavailable(c.start())
    unavailable(c.post(f"{c.base}/questions/nps", c.params(Digits="9")))
    assert count_rows(runtime) == (0, 0, 0)


def _nps_action(c) -> tuple[str, str]:
    """The NPS question's URL as the start webhook served it, and the call it names."""
    action = c.start().root.find("./Gather").get("action")
    return action, action.split("&ref=")[1]


def test_a_url_naming_another_request_stores_nothing_there(call, runtime):
    # Signed (so only by someone holding the auth token, or a bug of ours): a question
    # URL whose ref names another call's request. The one-statement answer finds no
    # such call and writes nothing; the webhook reads the real call and answers for it.
    victim, c = call(), call()
    _, victim_ref = _nps_action(victim)
    action, ref = _nps_action(c)
    reply = c.post(action.replace(ref, victim_ref), c.params(Digits="9"))
    assert reply.root.find("./Gather") is not None
    with runtime.db.session() as session:
        stored = session.execute(select(Answer.request_id, Answer.attempt_id)).all()
    assert len(stored) == 1
    assert stored[0].attempt_id == c.attempt_id
    assert stored[0].request_id != int(victim_ref.split(".")[0])


@pytest.mark.parametrize(
    "ref",
    ["", "x", "1.2.3", "1.1.0000000000000000.en", "1.1.9e8d4ccaba14f945.xx", "a.b.c.d", "..."],
)
def test_a_malformed_or_unknown_ref_falls_back_to_reading_the_call(call, runtime, ref):
    c = call()
    action, real = _nps_action(c)
    reply = c.post(action.replace(real, ref), c.params(Digits="9"))
    assert reply.root.find("./Gather") is not None
    with runtime.db.session() as session:
        assert session.scalars(select(Answer.value)).all() == [9]


def test_a_named_call_with_another_call_sid_is_unknown(call, runtime):
    c = call()
    action, _ = _nps_action(c)
    c.call_sid = "CA" + "e" * 32
    unavailable(c.post(action, c.params(Digits="9")))
    assert count_rows(runtime)[0] == 0


@pytest.mark.parametrize(
    "path",
    ["questions/nope?try=1", "questions/improve?try=1", "questions/nps/recording?try=1"],
)
def test_signed_webhook_for_a_question_the_survey_lacks_gets_a_goodbye(call, runtime, path):
    c = call()
    c.start()
    unavailable(c.post(f"{c.base}/{path}", c.params(Digits="9")))
    assert count_rows(runtime)[0] == 0


@pytest.mark.parametrize("try_value", ["abc", "-1", "99999999999999999999", ""])
def test_malformed_try_numbers_are_harmless(call, try_value):
    c = call()
    c.start()
    reply = c.post(f"{c.base}/questions/nps?try={try_value}", c.params(Digits="x"))
    assert reply.status == 200
    assert reply.root.find("./Gather") is not None or reply.verbs()[-1] == "Hangup"


@pytest.mark.parametrize(
    "digits", ["", "1" * 5000, "<Say>x</Say>", "'; DROP TABLE answers; --", "\u0000"]
)
def test_hostile_digits_never_break_the_call(call, digits):
    c = call()
    reply = c.press(c.start(), digits)
    assert reply.status == 200
    assert reply.root.find("./Gather") is not None


def test_database_outage_ends_the_call_politely(settings, make_attempt, tmp_path):
    broken = settings.with_overrides(
        database_url="postgresql+psycopg://nobody:nothing@127.0.0.1:1/none"
    )
    runtime = runtime_from_settings(broken)
    app = create_app(runtime=runtime)
    c = SignedCall(app.test_client(), 1, "CA" + "1" * 32, "+14155550123")
    unavailable(c.start())
    unavailable(c.post(f"{c.base}/questions/nps?try=1", c.params(Digits="9")))


def test_database_outage_ends_a_named_call_politely(call, settings):
    # The one-statement answer (the URL names the call, the survey version is known to
    # this process) meets a database that is down: the same polite goodbye.
    action, _ = _nps_action(call())
    broken = settings.with_overrides(
        database_url="postgresql+psycopg://nobody:nothing@127.0.0.1:1/none"
    )
    app = create_app(runtime=runtime_from_settings(broken))
    attempt_id = int(action.split("/attempts/")[1].split("/")[0])
    c = SignedCall(app.test_client(), attempt_id, "CA" + "1" * 32, "+14155550123")
    unavailable(c.post(action, c.params(Digits="9")))


def test_signature_check_has_no_off_switch():
    # Without an auth token nothing can be verified, so everything is refused.
    runtime = runtime_from_settings(Settings(database_url="sqlite://"))
    client = create_app(runtime=runtime).test_client()
    response = client.post(
        "/voice/attempts/1/start",
        data={"CallSid": "CA1"},
        headers={
            "X-Twilio-Signature": sign(
                "http://localhost:5000/voice/attempts/1/start", {"CallSid": "CA1"}
            )
        },
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"Digits=" + b"9" * (2 * 1024 * 1024), "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00garbage=\xc3\x28", "application/x-www-form-urlencoded"),
        (b'{"Digits": "9"}', "application/json"),
        (b'--x\r\nContent-Disposition: form-data; name="Digits"\r\n\r\n9', "multipart/form-data"),
    ],
    ids=["huge", "invalid-utf8", "json", "broken-multipart"],
)
def test_unreadable_or_unsigned_bodies_get_403_never_500(call, runtime, body, content_type):
    c = call()
    response = c.client.post(
        f"/voice/attempts/{c.attempt_id}/questions/nps?try=1",
        data=body,
        headers={"Content-Type": content_type, "X-Twilio-Signature": "forged"},
    )
    assert response.status_code == 403
    assert count_rows(runtime) == (0, 0, 0)
