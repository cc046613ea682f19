"""The Flask application factory: one app serving Twilio's webhooks (and, as they land,
the intake API and the supervisors' dashboard), each area its own blueprint."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy import text

from aftercall import observability
from aftercall.web.api_access import install_json_errors
from aftercall.web.context import attach_runtime
from aftercall.web.dashboard.follow_ups import bp as follow_ups
from aftercall.web.dashboard.queues import bp as queues
from aftercall.web.dashboard.survey_editor import bp as survey_editor
from aftercall.web.dashboard.surveys import bp as surveys
from aftercall.web.dashboard.views import bp as dashboard
from aftercall.web.firehose import bp as firehose
from aftercall.web.follow_ups_api import bp as follow_ups_api
from aftercall.web.inbound import bp as inbound
from aftercall.web.intake_api import bp as api
from aftercall.web.reports_api import bp as reports
from aftercall.web.session_cookie import SessionCookieInterface
from aftercall.web.sms import bp as sms
from aftercall.web.voice import bp as voice
from aftercall.wiring import runtime_from_settings
from core.config import Settings
from core.runtime import Runtime
from core.survey import SurveyError
from ivr.prompts import check_phrases

log = logging.getLogger(__name__)

# Twilio's webhook bodies are a few hundred bytes; nothing aftercall accepts is large.
MAX_REQUEST_BYTES = 1024 * 1024


def _check_phrases(runtime: Runtime) -> None:
    """A survey file that overrides a phrase wrongly stops the app at start, as it always
    did. A database survey only logs it: the editor that can mend it is this app, and
    it refuses such a survey on save (one can only predate a change of the built-in
    phrases); `aftercall doctor` fails on it too."""
    files = set(runtime.catalog.file_names())
    for name, definition in runtime.catalog.definitions().items():
        try:
            check_phrases(definition, f"{name}.toml")
        except SurveyError as exc:
            if name in files:
                raise
            log.error(
                "survey %s (kept in the database): %s; mend it in the survey editor", name, exc
            )


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Flask:
    if runtime is None:
        runtime = runtime_from_settings(settings or Settings.from_env())
    _check_phrases(runtime)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.session_interface = SessionCookieInterface()
    attach_runtime(app, runtime)

    app.register_blueprint(voice)
    app.register_blueprint(inbound)
    app.register_blueprint(sms)
    app.register_blueprint(api)
    app.register_blueprint(firehose)
    app.register_blueprint(reports)
    app.register_blueprint(follow_ups_api)
    app.register_blueprint(dashboard)
    app.register_blueprint(surveys)
    app.register_blueprint(survey_editor)
    app.register_blueprint(queues)
    app.register_blueprint(follow_ups)
    install_json_errors(app)
    observability.configure_logging(runtime.settings.json_logs)
    observability.install(app, runtime)

    @app.get("/healthz")
    def health():
        with runtime.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return jsonify(status="ok")

    return app
