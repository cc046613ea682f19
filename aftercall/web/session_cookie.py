"""The dashboard's signed session cookie, opened only when a request carries one.

Flask builds its cookie signer (an itsdangerous serializer and its key derivation) on
every request before it looks for the cookie. Twilio's webhooks and the APIs never carry
the dashboard's cookie (its path is /dashboard), yet paid that on every post: about
15 µs of a status callback's 315 (measured side by side in one process, bench/RESULTS.md).
A request without the cookie gets the same empty session Flask would give it, without
the signer.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class SessionCookieInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
