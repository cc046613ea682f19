"""The ceiling of the web stack: a bare Flask app whose one endpoint returns constant TwiML.

`bench.webhook_load` serves it with the same gunicorn command as the product's web
process and sends it the same signed webhook posts, so that what it measures is
gunicorn + Flask + HTTP on this machine with no signature check, no database and no
TwiML building: what the answer webhook is compared against.

`POST /stored` is the floor of any webhook that stores the answer before it replies:
the same, plus one INSERT of the post's CallSid and Digits into a table of its own
(`FLOOR_TABLE`, no constraints but its key), prepared, on psycopg's own connection, in
autocommit. No signature check, no call checked, no survey read: a figure of what the
database round trip alone costs this machine, beside which the answer webhook's
figures can be read.

    gunicorn ... "bench.constant_twiml:create_app()"
"""

from __future__ import annotations

import os

import psycopg
from flask import Flask, Response, request

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    "<Response><Say>Thank you for your feedback. Goodbye.</Say></Response>"
)


FLOOR_TABLE = "bench_floor_answers"
CREATE_FLOOR_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (id bigserial PRIMARY KEY, "
    "call_sid text NOT NULL, digits text NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"
)
_STORE = f"INSERT INTO {FLOOR_TABLE} (call_sid, digits) VALUES (%s, %s)"


def create_app() -> Flask:
    app = Flask(__name__)
    connection: psycopg.Connection | None = None  # per gunicorn worker, opened on first use

    @app.post("/twiml")
    def twiml() -> Response:
        return Response(TWIML, status=200, mimetype="text/xml")

    @app.post("/stored")
    def stored() -> Response:
        nonlocal connection
        if connection is None:
            connection = psycopg.connect(driver_url(os.environ["DATABASE_URL"]), autocommit=True)
        form = request.form
        connection.execute(_STORE, (form.get("CallSid", ""), form.get("Digits", "")), prepare=True)
        return Response(TWIML, status=200, mimetype="text/xml")

    return app


def driver_url(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://...) as psycopg's own connect() takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
