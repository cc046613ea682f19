"""The dashboard's Queues page: how the call and alert queues, their workers, schedulers
and the cron process are doing, and the failed jobs.

    GET  /dashboard/queues                               admins and supervisors
                                                         (?queue=NAME&page=N: whose
                                                         failed jobs, which page)
    POST /dashboard/queues/<queue>/failed/<id>/requeue   admins: run a failed job again
    POST /dashboard/queues/<queue>/failed/<id>/delete    admins: delete it

Analysts get 403: the page is about running aftercall, not about the survey figures.
Supervisors see everything read-only. It lives under /dashboard because the dashboard's
session cookie is sent only there; API keys have no way in (the dashboard knows no
bearer tokens).

Behind the dashboard's own sign-in, security headers, CSRF check and template globals
(aftercall.web.dashboard.views), not copies of them. Reading Redis and acting on failed jobs is
aftercall.queue_status; handlers parse, call it, and render.

Why not rq-dashboard: it runs against rq 3, but its pages are inline script (which the
dashboard's Content-Security-Policy refuses, leaving them empty), its actions check
no CSRF token (requeue-all also answers GET), and it shows jobs' arguments unmasked.
"""

from __future__ import annotations

from datetime import datetime
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
from redis import Redis
from redis.exceptions import RedisError

from aftercall import queue_status
from aftercall.web.context import current_runtime
from aftercall.web.dashboard import views as dashboard

bp = Blueprint("queues", __name__, url_prefix="/dashboard/queues", template_folder="templates")

dashboard.guard(bp)

READ_ROLES = ("admin", "supervisor")
FAILED_PER_PAGE = 20
REDIS_DOWN = "Redis does not answer ({}); the queues cannot be read right now."


def _redis() -> Redis:
    return current_runtime().redis


def may_see_queues(user: Any) -> bool:
    return user is not None and user.role in READ_ROLES


def may_act_on_jobs(user: Any) -> bool:
    return dashboard.is_admin(user)


@bp.before_request
def require_role() -> None:
    # After require_sign_in (registered first), so g.user is set.
    if not may_see_queues(g.get("user")):
        abort(403, "only admins and supervisors see the queues")


@bp.app_context_processor
def _nav_globals() -> dict[str, Any]:
    """For the dashboard's nav, on every dashboard page: whether to link here."""
    return {"may_see_queues": may_see_queues(g.get("user"))}


@bp.context_processor
def _queue_globals() -> dict[str, Any]:
    def local_time(moment: datetime | None) -> str:
        return dashboard.local_time(moment, seconds=True)

    def age(moment: datetime | None, since: datetime) -> str:
        if moment is None:
            return ""
        seconds = max(0, int((since - moment).total_seconds()))
        return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"

    return {"local_time": local_time, "age": age, "may_act": may_act_on_jobs(g.get("user"))}


def _page_number(text: str | None) -> int:
    try:
        page = int(text or 1)
    except ValueError:
        abort(400, "page: expected a number")
    if not 1 <= page <= dashboard.MAX_PAGE_NUMBER:
        abort(400, f"page: expected a number from 1 to {dashboard.MAX_PAGE_NUMBER}")
    return page


def _default_queue(overview: queue_status.Overview) -> str:
    """The first queue with failed jobs, else the call queue: what an operator looks for."""
    return next((q.name for q in overview.queues if q.failed), overview.queues[0].name)


@bp.get("")
def index() -> tuple[str, int] | str:
    page = _page_number(request.args.get("page"))
    try:
        overview = queue_status.overview(_redis())
        chosen = request.args.get("queue") or _default_queue(overview)
        if overview.queue(chosen) is None:
            names = ", ".join(q.name for q in overview.queues)
            abort(400, f"queue: expected one of {names}")
        failed = queue_status.failed_jobs(_redis(), chosen, page, FAILED_PER_PAGE)
    except RedisError as exc:
        return render_template("queues/index.html", error=REDIS_DOWN.format(exc)), 503
    return render_template("queues/index.html", overview=overview, failed=failed)


def _act(queue: str, job_id: str, action: str) -> Response:
    if not may_act_on_jobs(g.user):
        abort(403, "only admins requeue or delete jobs")
    dashboard.check_csrf()
    page = request.form.get("page", "")
    back = url_for("queues.index", queue=queue, page=page if page.isdigit() else None)
    connection = _redis()
    try:
        queue_status.check_queue_name(connection, queue)
    except ValueError as exc:
        abort(404, str(exc))
    except RedisError as exc:
        abort(503, REDIS_DOWN.format(exc))
    try:
        if action == "requeue":
            queue_status.requeue_failed(connection, queue, job_id)
            flash(f"Job {job_id} is queued again on {queue!r}.", "done")
        else:
            queue_status.delete_failed(connection, queue, job_id)
            flash(f"Job {job_id} is deleted.", "done")
    except (queue_status.NotFailed, queue_status.JobDataExpired) as exc:
        flash(f"Nothing done: {exc.args[0]}.", "error")
    except RedisError as exc:
        abort(503, REDIS_DOWN.format(exc))
    return redirect(back, code=303)


@bp.post("/<queue>/failed/<job_id>/requeue")
def requeue(queue: str, job_id: str) -> Response:
    return _act(queue, job_id, "requeue")


@bp.post("/<queue>/failed/<job_id>/delete")
def delete(queue: str, job_id: str) -> Response:
    return _act(queue, job_id, "delete")
