"""Twilio's webhooks skip the dashboard's session signer; the dashboard keeps its cookie."""

from __future__ import annotations

import pytest
from flask.sessions import SecureCookieSessionInterface

from core.users import create_user
from tests.dashboard.conftest import PASSWORD, USERNAME, sign_in


@pytest.fixture
def no_signer(monkeypatch):
    """Fail any request that builds the cookie signer."""

    def refuse(self, app):
        raise AssertionError("the session signer was built")

    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer", refuse)


def test_a_webhook_without_a_cookie_never_builds_the_signer(call, no_signer):
    c = call()
    reply = c.post(f"{c.base}/start", c.params())
    assert reply.status == 200
    assert reply.root.find("Gather") is not None


def test_a_signed_in_supervisor_keeps_the_session(runtime, client):
    with runtime.db.session() as session:
        create_user(session, USERNAME, PASSWORD, "supervisor")
    assert sign_in(client).status_code == 302
    assert client.get("/dashboard").status_code == 200


def test_a_forged_session_cookie_is_an_empty_session(client):
    client.set_cookie("aftercall_session", "forged.value.here", path="/dashboard")
    response = client.get("/dashboard")
    assert response.status_code == 302
    assert "/dashboard/login" in response.headers["Location"]
