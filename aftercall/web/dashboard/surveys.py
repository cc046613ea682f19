"""Survey management in the dashboard: the surveys, their call as text, test calls.

    GET  /dashboard/surveys                               every survey: questions,
                                                          languages, dialing, versions
    GET  /dashboard/surveys/<name>/preview/<language>     the call as text (?version=N:
                                                          a stored version)
    GET  /dashboard/surveys/<name>/test-call              admins: the test-call form
    POST /dashboard/surveys/<name>/test-call              admins: place it
    GET  /dashboard/surveys/test-calls/<request id>       admins: where a test call is

Signed-in users only, behind the dashboard's own sign-in, security headers, CSRF check
and template globals (aftercall.web.dashboard.views), not copies of them. The preview is
ivr.preview.call_script, the same rendering the webhooks answer calls with; a test call
is dialer.trial_call.schedule_test_call, the dialer's own path. Handlers parse, call
those, and render.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from aftercall.web.context import current_runtime
from aftercall.web.dashboard import views as dashboard
from core.survey import SurveyDefinition, UnknownSurvey
from core.survey_versions import definition_of
from dialer import trial_call as test_call
from ivr.preview import call_script
from scoring.surveys import stored_version, survey_entries

bp = Blueprint("surveys", __name__, url_prefix="/dashboard/surveys", template_folder="templates")

dashboard.guard(bp)

MAX_PHONE_INPUT = 64


@bp.context_processor
def _survey_globals() -> dict[str, Any]:
    user = g.get("user")
    return {
        "local_time": dashboard.local_time,
        "may_test_call": dashboard.is_admin(user),
        "file_names": current_runtime().catalog.file_names(),
    }


def _definition(name: str) -> SurveyDefinition:
    try:
        return current_runtime().catalog.get(name)
    except UnknownSurvey:
        abort(404, f"no survey named {name!r}")


@bp.get("")
def index() -> str:
    runtime = current_runtime()
    with runtime.db.session() as db:
        entries = survey_entries(db, runtime.catalog)
    return render_template("surveys/index.html", entries=entries)


@bp.get("/<name>/preview/<language>")
def preview(name: str, language: str) -> str:
    runtime = current_runtime()
    version_arg = request.args.get("version", "")
    version = None
    if version_arg:
        if not version_arg.isdigit():
            abort(400, "version: expected a version number")
        with runtime.db.session() as db:
            row = stored_version(db, name, int(version_arg))
            if row is None:
                abort(404, f"survey {name!r} has no version {version_arg}")
            definition = definition_of(row)
            version = row.version
    else:
        definition = _definition(name)
    if language not in definition.languages:
        abort(404, f"survey {name!r} has no prompts in {language!r}")
    settings = runtime.settings
    script = call_script(definition, language, settings.company_name, settings.callback_number)
    return render_template(
        "surveys/preview.html",
        definition=definition,
        script=script,
        version=version,
        languages=sorted(definition.languages),
    )


@bp.route("/<name>/test-call", methods=["GET", "POST"])
def new_test_call(name: str) -> Response | tuple[str, int] | str:
    dashboard.require_admin("only admins place test calls")
    definition = _definition(name)
    form = {"phone": "", "language": definition.default_language}
    if request.method == "GET":
        return render_template("surveys/test_call.html", definition=definition, form=form)
    dashboard.check_csrf()
    form = {
        "phone": request.form.get("phone", "")[:MAX_PHONE_INPUT],
        "language": request.form.get("language", ""),
    }
    try:
        placed = test_call.schedule_test_call(
            current_runtime(), name, form["phone"], form["language"], requested_by=g.user.username
        )
    except test_call.TestCallRefused as refused:
        return render_template(
            "surveys/test_call.html", definition=definition, form=form, refused=refused
        ), 400
    return redirect(url_for("surveys.test_call_status", request_id=placed.request_id), code=303)


@bp.get("/test-calls/<int:request_id>")
def test_call_status(request_id: int) -> str:
    dashboard.require_admin("only admins place test calls")
    status = test_call.status_of(current_runtime(), request_id)
    if status is None:
        abort(404, "no such test call")
    return render_template(
        "surveys/test_call_status.html", status=status, now=current_runtime().now()
    )
