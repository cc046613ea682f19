"""The ceiling of the web stack: a bare Flask app whose one endpoint returns constant TwiML.

`bench.webhook_load` serves it with the same gunicorn command as the product's web
process and sends it the same signed webhook posts, so that what it measures is
gunicorn + Flask + HTTP on this machine with no signature check, no database and no
TwiML building: what the answer webhook is compared against.

    gunicorn ... "bench.constant_twiml:create_app()"
"""

from __future__ import annotations

from flask import Flask, Response

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    "<Response><Say>Thank you for your feedback. Goodbye.</Say></Response>"
)


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/twiml")
    def twiml() -> Response:
        return Response(TWIML, status=200, mimetype="text/xml")

    return app
