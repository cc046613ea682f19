"""The survey editor: admins create, copy, edit, retire and restore surveys in the
dashboard instead of editing TOML on the server.

    GET       /dashboard/surveys/manage               every survey, file and database,
                                                      retired ones too, with its actions
    GET|POST  /dashboard/surveys/new                  admins: a new survey
    GET|POST  /dashboard/surveys/<name>/copy          admins: a new survey from any survey
    GET|POST  /dashboard/surveys/<name>/edit          admins: a database survey (a file
                                                      survey answers 403: copy it)
    POST      /dashboard/surveys/live-preview         admins: the call as text for the
                                                      unsaved form (the page's script)
    GET|POST  /dashboard/surveys/<name>/retire        admins: confirm, then retire
    GET|POST  /dashboard/surveys/<name>/restore       admins: confirm, then restore
    GET       /dashboard/surveys/<name>/history       who changed what, when, which version

Anyone signed in may read (the list, the history); every form and every write is for
admins, as test calls are (aftercall.web.dashboard.surveys). The form works without
JavaScript: each editing move (add, remove, move a question, add a language, preview) is
a submit button that re-renders the form with everything typed kept; the static script
survey_editor.js only refreshes the preview as the admin types.

Handlers parse (aftercall.web.dashboard.survey_form: the form <-> the survey dict),
validate with core.survey and ivr.prompts.check_phrases (what `aftercall surveys check`
runs), store with core.survey_store (which refuses a stale revision: SurveyConflict,
answered 409 with the admin's input kept), commit, refresh the catalog, and render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from aftercall.web.context import current_runtime
from aftercall.web.dashboard import survey_form
from aftercall.web.dashboard import views as dashboard
from aftercall.web.dashboard.survey_form import SurveyForm
from core import survey_store as store
from core.survey import NAME_PATTERN, SurveyDefinition, SurveyError, UnknownSurvey
from ivr.preview import CallScript, call_script
from ivr.prompts import builtin_phrase

bp = Blueprint(
    "survey_editor", __name__, url_prefix="/dashboard/surveys", template_folder="templates"
)

dashboard.guard(bp)

MAX_REVISION_DIGITS = 12
# ASCII digits only: str.isdigit() also says yes to "²", which int() refuses.
_REVISION = re.compile(rf"[0-9]{{1,{MAX_REVISION_DIGITS}}}")


@bp.context_processor
def _editor_globals() -> dict[str, Any]:
    user = g.get("user")
    return {
        "local_time": dashboard.local_time,
        "may_edit": dashboard.is_admin(user),
        "input_id": survey_form.input_id,
        "sections": survey_form.SECTIONS,
        "phrase_names": survey_form.PHRASE_NAMES,
        "kinds": survey_form.KINDS,
        "kind_answers": survey_form.KIND_ANSWERS,
        "kinds_hint": "; ".join(f"{k} {a}" for k, a in survey_form.KIND_ANSWERS.items()),
        "builtin_phrase": builtin_phrase,
    }


# -- where a survey comes from ----------------------------------------------------------


def _is_file_survey(name: str) -> bool:
    return name in current_runtime().catalog.file_names()


def _managed(name: str) -> store.ManagedSurvey | None:
    with current_runtime().db.session() as db:
        return store.managed_survey(db, name)


def _any_definition(name: str) -> SurveyDefinition:
    """A survey to copy or show: the one calls use, else a retired database survey."""
    _require_survey_name(name)
    try:
        return current_runtime().catalog.get(name)
    except UnknownSurvey:
        managed = _managed(name)
        if managed is None:
            abort(404, f"no survey named {name!r}")
        return managed.definition


def _editable(name: str) -> store.ManagedSurvey | tuple[str, int]:
    """The database survey `name`, or the page refusing it (a file survey: 403)."""
    _require_survey_name(name)
    if _is_file_survey(name):
        return render_template("survey_editor/file_survey.html", name=name), 403
    managed = _managed(name)
    if managed is None:
        abort(404, f"no survey named {name!r}")
    return managed


def _require_survey_name(name: str) -> None:
    """404 for a name no survey can have (a NUL, which PostgreSQL refuses in a query,
    included), before anything is looked up."""
    if not NAME_PATTERN.fullmatch(name):
        abort(404, f"no survey named {name!r}")


def _posted_revision() -> int:
    text = request.form.get("revision", "")
    if not _REVISION.fullmatch(text):
        abort(400, "revision: expected the revision number the form was opened at")
    return int(text)


# -- the list and the history -----------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    name: str
    title: str
    source: str  # file | database
    managed: store.ManagedSurvey | None


@bp.get("/manage")
def index() -> str:
    runtime = current_runtime()
    with runtime.db.session() as db:
        managed = {survey.name: survey for survey in store.managed_surveys(db)}
    files = set(runtime.catalog.file_names())
    listed = [
        Listed(name, runtime.catalog.get(name).title, "file", None) for name in sorted(files)
    ] + [
        Listed(name, survey.definition.title, "database", survey)
        for name, survey in sorted(managed.items())
        if name not in files
    ]
    return render_template("survey_editor/index.html", listed=listed)


@bp.get("/<name>/history")
def history(name: str) -> str:
    _require_survey_name(name)
    file_survey = _is_file_survey(name)
    with current_runtime().db.session() as db:
        managed = store.managed_survey(db, name)
        changes = store.survey_history(db, name)
    if not file_survey and managed is None and not changes:
        abort(404, f"no survey named {name!r}")
    return render_template(
        "survey_editor/history.html",
        name=name,
        managed=managed,
        changes=changes,
        file_survey=file_survey,
    )


# -- the form ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownError:
    field_path: str
    message: str
    anchor: str  # the input it is shown beside ("" if none: the summary links the form)

    @property
    def target(self) -> str:
        return survey_form.input_id(self.anchor) if self.anchor else "survey-form"


@dataclass(frozen=True)
class Editing:
    """Which form: a new survey (maybe copied from `source`), or a database survey."""

    mode: str  # new | copy | edit
    name: str = ""  # the survey edited, or copied
    revision: int | None = None
    retired: bool = False  # an edited survey out of service: no test call until restored

    @property
    def action_url(self) -> str:
        if self.mode == "edit":
            return url_for("survey_editor.edit", name=self.name)
        if self.mode == "copy":
            return url_for("survey_editor.copy", name=self.name)
        return url_for("survey_editor.new")


def _previews(definition: SurveyDefinition | None) -> list[CallScript]:
    if definition is None:
        return []
    settings = current_runtime().settings
    languages = sorted(
        definition.languages, key=lambda lang: (lang != definition.default_language, lang)
    )
    return [
        call_script(definition, lang, settings.company_name, settings.callback_number)
        for lang in languages
    ]


def _render_form(
    editing: Editing,
    form: SurveyForm,
    *,
    errors: tuple[SurveyError, ...] = (),
    focus: str = "",
    conflict: store.ManagedSurvey | None = None,
    status: int = 200,
) -> tuple[str, int]:
    checked = survey_form.check_form(form)
    paths = form.field_paths()
    shown = [
        ShownError(e.field_path, e.message, survey_form.error_anchor(e.field_path, paths) or "")
        for e in errors
    ]
    by_anchor: dict[str, list[str]] = {}
    for error in shown:
        by_anchor.setdefault(error.anchor, []).append(error.message)
    return render_template(
        "survey_editor/form.html",
        editing=editing,
        form=form,
        errors=shown,
        errors_at=by_anchor,
        focus=focus,
        scripts=_previews(checked.definition),
        preview_problem=checked.errors[0] if checked.errors else None,
        conflict=conflict,
        conflict_toml=store.export_toml(conflict.definition) if conflict else "",
    ), status


def _posted_form() -> SurveyForm:
    return survey_form.parse_form(request.form.to_dict(), request.form.getlist("languages"))


def _action() -> str:
    action = request.form.get("action", "preview")[:40]
    name = action.partition(":")[0]
    if name in survey_form.ACTIONS or name in (*survey_form.INDEXED_ACTIONS, "remove_language"):
        return action
    return "preview"


def _handle_post(editing: Editing) -> Response | tuple[str, int]:
    """Every form's POST: an editing move, a preview, or a save."""
    dashboard.check_csrf()
    form = _posted_form()
    if editing.mode == "edit":
        form = survey_form.with_name(form, editing.name)
    action = _action()
    if action not in ("save", "preview"):
        moved, problem, focus = survey_form.apply_action(form, action)
        errors = (problem,) if problem else ()
        return _render_form(
            editing, moved, errors=errors, focus=focus, status=400 if problem else 200
        )
    checked = survey_form.check_form(form)
    if checked.errors or checked.definition is None:
        return _render_form(editing, form, errors=checked.errors, status=400)
    if action == "preview":
        return _render_form(editing, form)
    return _save(editing, form, checked.definition)


def _save(
    editing: Editing, form: SurveyForm, definition: SurveyDefinition
) -> Response | tuple[str, int]:
    runtime = current_runtime()
    by = g.user.username
    if editing.mode == "edit":
        revision = _posted_revision()
        try:
            with runtime.db.session() as db:
                saved = store.save_survey(db, definition, expected_revision=revision, by=by)
        except UnknownSurvey:
            abort(404, f"no survey named {editing.name!r}")
        except store.SurveyConflict as conflict:
            current = conflict.current
            ahead = Editing("edit", editing.name, current.revision, current.retired)
            return _render_form(ahead, form, conflict=current, status=409)
        verb = "saved"
    else:
        try:
            with runtime.db.session() as db:
                saved = store.create_survey(
                    db,
                    definition,
                    by=by,
                    file_names=runtime.catalog.file_names(),
                    action="copied" if editing.mode == "copy" else "created",
                )
        except (store.SurveyExists, store.ManagedByFile) as taken:
            message = (
                str(taken)
                if isinstance(taken, store.SurveyExists)
                else f"a survey named {taken.name!r} already exists (the file {taken.name}.toml "
                "in SURVEYS_DIR); choose another name"
            )
            error = SurveyError(survey_form.SOURCE, "name", message)
            return _render_form(editing, form, errors=(error,), status=400)
        verb = "created"
    runtime.catalog.refresh()
    flash(
        f"Survey {saved.name} {verb}: revision {saved.revision}, version {saved.version}.", "done"
    )
    return redirect(url_for("surveys.index", _anchor=f"survey-{saved.name}"), code=303)


@bp.route("/new", methods=["GET", "POST"])
def new() -> Response | tuple[str, int]:
    dashboard.require_admin("only admins change surveys")
    editing = Editing("new")
    if request.method == "POST":
        return _handle_post(editing)
    return _render_form(editing, survey_form.blank_form(), focus="name")


@bp.route("/<name>/copy", methods=["GET", "POST"])
def copy(name: str) -> Response | tuple[str, int]:
    dashboard.require_admin("only admins change surveys")
    source = _any_definition(name)
    editing = Editing("copy", name)
    if request.method == "POST":
        return _handle_post(editing)
    form = survey_form.with_name(survey_form.form_from_definition(source), f"{name}-copy"[:100])
    return _render_form(editing, form, focus="name")


@bp.route("/<name>/edit", methods=["GET", "POST"])
def edit(name: str) -> Response | tuple[str, int]:
    dashboard.require_admin("only admins change surveys")
    found = _editable(name)
    if isinstance(found, tuple):
        return found
    editing = Editing("edit", name, found.revision, found.retired)
    if request.method == "POST":
        # The revision the form was opened at, not the one stored now: a preview or an
        # editing move re-renders the form, and must not quietly move it past another
        # admin's save (the save would then overwrite it without a conflict).
        return _handle_post(replace(editing, revision=_posted_revision()))
    return _render_form(editing, survey_form.form_from_definition(found.definition))


@bp.post("/live-preview")
def live_preview() -> str:
    dashboard.require_admin("only admins change surveys")
    dashboard.check_csrf()
    checked = survey_form.check_form(_posted_form())
    return render_template(
        "survey_editor/_preview.html",
        scripts=_previews(checked.definition),
        preview_problem=checked.errors[0] if checked.errors else None,
    )


# -- retire and restore -----------------------------------------------------------------


def _lifecycle(name: str, retiring: bool) -> Response | tuple[str, int]:
    dashboard.require_admin("only admins change surveys")
    found = _editable(name)
    if isinstance(found, tuple):
        return found
    template = "survey_editor/confirm.html"
    if retiring == (found.retired_at is not None):
        state = "retired" if retiring else "in use"
        return render_template(template, survey=found, retiring=retiring, already=state), 409
    if request.method == "GET":
        return render_template(template, survey=found, retiring=retiring), 200
    dashboard.check_csrf()
    revision = _posted_revision()
    change = store.retire_survey if retiring else store.restore_survey
    runtime = current_runtime()
    try:
        with runtime.db.session() as db:
            change(db, name, expected_revision=revision, by=g.user.username)
    except UnknownSurvey:
        abort(404, f"no survey named {name!r}")
    except store.SurveyConflict as conflict:
        return render_template(
            template, survey=conflict.current, retiring=retiring, conflict=conflict.current
        ), 409
    runtime.catalog.refresh()
    flash(f"Survey {name} {'retired' if retiring else 'restored'}.", "done")
    return redirect(url_for("survey_editor.index", _anchor=f"survey-{name}"), code=303)


@bp.route("/<name>/retire", methods=["GET", "POST"])
def retire(name: str) -> Response | tuple[str, int]:
    return _lifecycle(name, retiring=True)


@bp.route("/<name>/restore", methods=["GET", "POST"])
def restore(name: str) -> Response | tuple[str, int]:
    return _lifecycle(name, retiring=False)
