"""Signing in and out: sessions, CSRF, the generic failure message, lockout, headers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from aftercall.web import create_app
from core.db import utcnow
from core.models import User
from core.users import LOCKOUT, MAX_FAILED_LOGINS, delete_user
from tests.dashboard.conftest import PASSWORD, USERNAME, csrf_from, sign_in
from tests.dashboard.dom import parse


def login_error(response) -> str | None:
    element = parse(response.text).find(id="login-error")
    return element.text if element else None


@pytest.mark.parametrize(
    "path",
    ["/dashboard", "/dashboard/", "/dashboard?queue=billing", "/dashboard/export.csv?table=agents"],
)
def test_every_page_but_login_needs_a_signed_in_user(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/dashboard/login?next=")


def test_sign_in_goes_back_to_the_page_asked_for_then_sign_out(client, user):
    first = client.get("/dashboard?queue=billing")
    login_page = client.get(first.headers["Location"])
    document = parse(login_page.text)
    assert document.find("input", name="next").get("value") == "/dashboard?queue=billing"
    response = client.post(
        "/dashboard/login",
        data={
            "csrf_token": csrf_from(login_page.text),
            "username": USERNAME,
            "password": PASSWORD,
            "next": "/dashboard?queue=billing",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard?queue=billing"
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert parse(page.text).by_id("signed-in-as").text == USERNAME

    out = client.post("/dashboard/logout", data={"csrf_token": csrf_from(page.text)})
    assert out.status_code == 302
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/dashboard", "/api/v1/reports/scores"]
)
def test_next_never_leaves_the_dashboard(client, user, target):
    token = csrf_from(client.get("/dashboard/login").text)
    response = client.post(
        "/dashboard/login",
        data={"csrf_token": token, "username": USERNAME, "password": PASSWORD, "next": target},
    )
    assert response.headers["Location"] == "/dashboard"


@pytest.mark.parametrize("token", [None, "", "forged-token", "é"])
def test_login_without_the_right_csrf_token_is_rejected(client, user, token):
    client.get("/dashboard/login")  # the session has a token; the form does not send it
    data = {"username": USERNAME, "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/dashboard/login", data=data)
    assert response.status_code == 400
    assert client.get("/dashboard").status_code == 302


def test_a_token_from_another_session_is_rejected(app, user):
    other = app.test_client()
    token = csrf_from(other.get("/dashboard/login").text)
    client = app.test_client()
    client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"csrf_token": token, "username": USERNAME, "password": PASSWORD},
    )
    assert response.status_code == 400


def test_logout_needs_the_csrf_token(signed_in):
    assert signed_in.post("/dashboard/logout").status_code == 400
    assert signed_in.post("/dashboard/logout", data={"csrf_token": "x"}).status_code == 400
    assert signed_in.get("/dashboard").status_code == 200


def test_unknown_user_and_wrong_password_look_the_same(client, user):
    unknown = sign_in(client, "nobody", PASSWORD)
    wrong = sign_in(client, USERNAME, "not the password")
    assert unknown.status_code == wrong.status_code == 200
    assert login_error(unknown) == login_error(wrong) is not None
    # The forms differ only in their CSRF token, never in what they say about the user.
    assert unknown.text.replace(csrf_from(unknown.text), "") == wrong.text.replace(
        csrf_from(wrong.text), ""
    )


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(client, user, runtime):
    for _ in range(MAX_FAILED_LOGINS):
        assert login_error(sign_in(client, USERNAME, "wrong password!")) is not None
    with runtime.db.session() as session:
        locked_until = session.scalar(select(User.locked_until))
    assert abs(locked_until - (utcnow() + LOCKOUT)) < timedelta(seconds=30)

    # The right password does not help while locked, and the page says nothing new.
    locked = sign_in(client, USERNAME, PASSWORD)
    assert locked.status_code == 200
    assert login_error(locked) == login_error(sign_in(client, "nobody", PASSWORD))
    assert client.get("/dashboard").status_code == 302

    with runtime.db.session() as session:  # fifteen minutes later
        session.execute(update(User).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert sign_in(client, USERNAME, PASSWORD).status_code == 302
    with runtime.db.session() as session:
        signed = session.scalars(select(User)).one()
    assert (signed.failed_logins, signed.locked_until) == (0, None)
    assert signed.last_login_at is not None


def test_fewer_than_five_failures_do_not_lock(client, user):
    for _ in range(MAX_FAILED_LOGINS - 1):
        sign_in(client, USERNAME, "wrong password!")
    assert sign_in(client, USERNAME, PASSWORD).status_code == 302


def test_deleting_a_user_ends_their_session(signed_in, runtime):
    with runtime.db.session() as session:
        delete_user(session, USERNAME)
    assert signed_in.get("/dashboard").status_code == 302


def test_session_cookie_flags(client):
    cookie = client.get("/dashboard/login").headers["Set-Cookie"]
    flags = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")}
    assert "httponly" in flags
    assert flags["samesite"].strip() == "SameSite=Lax"
    assert flags["path"].strip() == "Path=/dashboard"
    assert "secure" not in flags  # local development runs over http


def test_session_cookie_is_secure_in_production(runtime):
    runtime.settings = runtime.settings.with_overrides(env="production")
    cookie = create_app(runtime=runtime).test_client().get("/dashboard/login")
    flags = [part.strip().lower() for part in cookie.headers["Set-Cookie"].split(";")]
    assert "secure" in flags and "httponly" in flags


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/login",
        "/dashboard",
        "/dashboard/export.csv?table=agents",
        "/dashboard/static/dashboard.css",
    ],
)
def test_security_headers(signed_in, path):
    response = signed_in.get(path)
    assert response.status_code == 200
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline'
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_script_or_style(signed_in, seeded):
    for path in ("/dashboard", "/dashboard/login"):
        document = parse(signed_in.get(path).text)
        assert all(s.get("src") for s in document.find_all("script"))
        assert document.find_all("style") == []
        assert [e.tag for e in document.iter() if "style" in e.attrs] == []
        assert not [e for e in document.iter() if any(a.startswith("on") for a in e.attrs)]
