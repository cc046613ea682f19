"""The supervisors' dashboard: sign-in, one page of figures, and CSV downloads of its tables.

    GET  /dashboard             headline scores, trends, distributions, funnel, survey
                                modes, channels, agents, detractors, for the filters in
                                the query string
    GET  /dashboard/export.csv  one of the page's tables
                                (?table=agents|modes|channels|trend|detractors)
    GET  /dashboard/login       the sign-in form; POST signs in
    POST /dashboard/logout

Handlers parse the filters, ask scoring.report and scoring.detractors for the figures
(every sum and count is done by the database), and render. The page works without
JavaScript: filters are a GET form, sorting and paging are links.

Texts: the channel filter and the table by channel sit beside the mode's; the funnel
gains its text steps (texted, undelivered, no reply) when a text channel has requests
in the range, as the table by channel (counted from the tables) says exactly.

What a user sees of customers follows their role (core.users): the detractor table,
on the page and in its CSV, is built by csv_export.detractor_table for the signed-in
user's `Contact`, read from the database on every request; templates only render it.

Security: a signed session cookie (HttpOnly, SameSite=Lax, Secure in production, sent
only under /dashboard), a per-session CSRF token on every POST, a strict
Content-Security-Policy (no inline script or style, nothing from other origins), and
sign-in rules from core.users (generic failure message, lockout).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from sqlalchemy.orm import Session

from aftercall.web.context import current_runtime, runtime_of
from aftercall.web.dashboard import charts
from core.users import LOCKOUT, MAX_FAILED_LOGINS, SignedIn, authenticate, signed_in_user
from scoring import csv_export
from scoring.buckets import UNITS, buckets
from scoring.detractors import Contact, detractors
from scoring.filters import parse_report_query
from scoring.formats import SMALL_SAMPLE_MARK, SMALL_SAMPLE_NOTE, nps_cell
from scoring.report import (
    CHANNELS,
    CSAT_SCALE,
    MIN_RELIABLE_SAMPLE,
    MODES,
    NPS_SCALE,
    TEXT_CHANNELS,
    ReportError,
    ReportQuery,
    ReportRow,
    group_values,
    regroup,
    report,
    spoken_share,
    totals,
)

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)

DEFAULT_DAYS = 30
# Longer ranges are still fine by week or month; by day the trend chart stops being one.
MAX_RANGE_DAYS = 3 * 366
DETRACTORS_PER_PAGE = 20
AGENTS_PER_PAGE = 50
# Far past any real list; keeps the OFFSET inside what every database accepts.
MAX_PAGE_NUMBER = 10_000
CHOICE_DIMENSIONS = ("queue", "team", "survey")
# The mode dropdown offers both modes always: they are fixed, not data.
MODE_CHOICES = tuple((mode, csv_export.mode_label(mode)) for mode in MODES)
# The channel dropdown likewise: the three channels always, in the order of their table.
CHANNEL_CHOICES = tuple(
    (channel, csv_export.channel_label(channel))
    for channel in sorted(CHANNELS, key=list(csv_export.CHANNEL_LABELS).index)
)
LOGIN_FAILED = "Wrong username or password."
SESSION_HOURS = 12

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


@bp.record_once
def _configure_sessions(state: BlueprintSetupState) -> None:
    """The app's session cookie is the dashboard's, so the blueprint sets it up."""
    settings = runtime_of(state.app).settings
    state.app.secret_key = settings.secret_key
    state.app.config.update(
        SESSION_COOKIE_NAME="aftercall_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        # Twilio's webhooks and the API have no use for a supervisor's cookie.
        SESSION_COOKIE_PATH=bp.url_prefix,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if request.endpoint != "dashboard.static":
        # Figures about named agents and customers' comments: never kept in a cache.
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_request
def require_sign_in() -> Response | None:
    if request.endpoint in ("dashboard.login", "dashboard.static"):
        return None
    user_id = session.get("user_id")
    user = None
    if isinstance(user_id, int):
        with current_runtime().db.session() as db:
            user = signed_in_user(db, user_id)
    if user is None:
        session.pop("user_id", None)
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("dashboard.login", next=target))
    g.user = user
    return None


# -- CSRF -----------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's token for POST forms, made on first use."""
    token = session.get("csrf_token")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf_token"] = token
    return token


def check_csrf() -> None:
    expected = session.get("csrf_token")
    given = request.form.get("csrf_token", "")
    if not isinstance(expected, str) or not expected:
        abort(400, "the form has expired; reload the page and try again")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        abort(400, "the form has expired; reload the page and try again")


@bp.context_processor
def template_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "user": g.get("user")}


def guard(blueprint: Blueprint) -> None:
    """The dashboard's sign-in, security headers and template globals for another
    blueprint of dashboard pages: Flask runs a blueprint's hooks for its own routes only.
    Register it before the blueprint's own guards, which may then rely on `g.user`."""
    blueprint.before_request(require_sign_in)
    blueprint.after_request(security_headers)
    blueprint.context_processor(template_globals)


# The role that changes how aftercall works (surveys, test calls, jobs, users).
ADMIN_ROLE = "admin"


def is_admin(user: Any) -> bool:
    return user is not None and user.role == ADMIN_ROLE


def require_admin(why: str) -> None:
    """403 with `why` unless the signed-in user is an admin (after `require_sign_in`)."""
    if not is_admin(g.get("user")):
        abort(403, why)


# -- sign-in --------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only back into the dashboard: `next` must not send a signed-in user elsewhere."""
    if target and target.startswith(bp.url_prefix or "/dashboard") and "\\" not in target:
        return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    next_url = request.values.get("next")
    error = None
    if request.method == "POST":
        check_csrf()
        with current_runtime().db.session() as db:
            user = authenticate(
                db, request.form.get("username", ""), request.form.get("password", "")
            )
        if user is not None:
            _start_session(user)
            return redirect(_safe_next(next_url))
        error = LOGIN_FAILED
    return render_template(
        "dashboard/login.html",
        error=error,
        next_url=next_url,
        max_failed=MAX_FAILED_LOGINS,
        lockout_minutes=int(LOCKOUT.total_seconds() // 60),
    )


def _start_session(user: SignedIn) -> None:
    # A fresh session (and CSRF token) on sign-in, so nothing planted before it survives.
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    csrf_token()


@bp.post("/logout")
def logout() -> Response:
    check_csrf()
    session.clear()
    return redirect(url_for("dashboard.login"))


# -- filters --------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the supervisor asked to see, as the query string carries it."""

    since: date
    until: date  # included
    queue: str = ""
    team: str = ""
    survey: str = ""
    mode: str = ""  # callback | in_call; "": both
    channel: str = ""  # voice | sms | sms_fallback; "": all
    unit: str = "day"
    sort: str = csv_export.DEFAULT_AGENT_SORT
    page: int = 1  # of the detractor list
    agents_page: int = 1

    def args(self, **changes: Any) -> dict[str, str]:
        """Query-string arguments for a link to this view with some filters changed."""
        values = asdict(replace(self, **changes))
        return {k: str(v) for k, v in values.items() if v not in ("", None)}

    def query(self, zone: ZoneInfo, by: tuple[str, ...] = ()) -> ReportQuery:
        params = {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "queue": self.queue,
            "team": self.team,
            "survey": self.survey,
            "mode": self.mode or None,
            "channel": self.channel or None,
        }
        return replace(parse_report_query(params, zone), by=by)


def report_zone() -> ZoneInfo:
    """REPORT_TIME_ZONE: the zone every dashboard page shows days and times in."""
    return ZoneInfo(current_runtime().settings.report_time_zone)


def local_time(moment: datetime | None, *, seconds: bool = False) -> str:
    """A stored (UTC) time as the dashboard shows it, in REPORT_TIME_ZONE."""
    if moment is None:
        return "–"
    return moment.astimezone(report_zone()).strftime(
        "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
    )


def default_filters() -> Filters:
    today = current_runtime().now().astimezone(report_zone()).date()
    return Filters(since=today - timedelta(days=DEFAULT_DAYS - 1), until=today)


def parse_filters(args: dict[str, str]) -> Filters:
    """The filters from a query string; ReportError naming the first bad parameter."""
    defaults = default_filters()
    dates = {}
    for name in ("since", "until"):
        text = (args.get(name) or "").strip()
        try:
            dates[name] = date.fromisoformat(text) if text else getattr(defaults, name)
        except ValueError:
            raise ReportError(f"{name}: expected a date like 2026-11-23") from None
    if dates["since"] > dates["until"]:
        raise ReportError("since: must not be after until")
    if (dates["until"] - dates["since"]).days > MAX_RANGE_DAYS:
        raise ReportError(f"the range may span at most {MAX_RANGE_DAYS} days")
    unit = args.get("unit") or defaults.unit
    if unit not in UNITS:
        raise ReportError(f"unit: expected one of {', '.join(UNITS)}")
    pages = {name: _page_number(args, name) for name in ("page", "agents_page")}
    filters = Filters(
        since=dates["since"],
        until=dates["until"],
        queue=(args.get("queue") or "").strip(),
        team=(args.get("team") or "").strip(),
        survey=(args.get("survey") or "").strip(),
        mode=args.get("mode") or "",
        channel=args.get("channel") or "",
        unit=unit,
        sort=_sort(args.get("sort")),
        **pages,
    )
    filters.query(report_zone())  # the shared parser's checks (lengths, characters)
    return filters


def _page_number(args: dict[str, str], name: str) -> int:
    try:
        page = int(args.get(name) or 1)
    except ValueError:
        raise ReportError(f"{name}: expected a number") from None
    if not 1 <= page <= MAX_PAGE_NUMBER:
        raise ReportError(f"{name}: expected a number from 1 to {MAX_PAGE_NUMBER}")
    return page


def _sort(text: str | None) -> str:
    key, descending = csv_export.parse_sort(text)
    return f"-{key}" if descending else key


def filter_choices(db: Session, query: ReportQuery | None = None) -> dict[str, list[str]]:
    """The values each dropdown offers: those of the period on screen (all time without
    one); a value chosen in the filters is always offered, even if the period lacks it."""
    choices = group_values(db, CHOICE_DIMENSIONS, query or ReportQuery())
    if query is not None:
        for name in CHOICE_DIMENSIONS:
            chosen = getattr(query, name)
            if chosen is not None and chosen not in choices[name]:
                choices[name] = sorted([*choices[name], chosen])
    return choices


# -- the page -------------------------------------------------------------------------


def _one(rows: list[ReportRow]) -> ReportRow:
    return rows[0] if rows else ReportRow(group={})


def _trend_points(
    rows: list[ReportRow], query: ReportQuery, unit: str
) -> tuple[list[charts.Point], list[charts.Point]]:
    """NPS and CSAT per period, every period of the range present (gaps where no data)."""
    by_label = {row.group.get(unit): row for row in rows}
    nps, csat = [], []
    assert query.since is not None and query.until is not None
    for period in buckets(query.since, query.until, unit, query.time_zone):
        row = by_label.get(period.label) or ReportRow(group={})
        nps.append(
            charts.Point(
                period.label,
                row.nps,
                f"{period.label}: NPS {_signed(row.nps)} (n={row.nps_responses})",
            )
        )
        csat.append(
            charts.Point(
                period.label,
                row.csat,
                f"{period.label}: CSAT {_percent(row.csat)} (n={row.csat_responses})",
            )
        )
    return nps, csat


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


NPS_KINDS = {range(0, 7): "detractor", range(7, 9): "passive", range(9, 11): "promoter"}
CSAT_KINDS = {range(1, 3): "dissatisfied", range(3, 4): "neutral", range(4, 6): "satisfied"}


def _bars(distribution: dict[int, int], scale: range, kinds: dict[range, str]) -> list[charts.Bar]:
    total = sum(distribution.values())
    result = []
    for point in scale:
        count = distribution.get(point, 0)
        kind = next(name for span, name in kinds.items() if point in span)
        share = f" ({100 * count / total:.0f}%)" if total else ""
        result.append(charts.Bar(str(point), count, kind, f"{point}: {count} answers{share}"))
    return result


# What each step counts, in words; the text steps' and the words texts add only appear
# when a text channel has requests in the range, so a voice-only funnel reads as before.
FUNNEL_NOTES = {
    "received": "finished support calls handed to aftercall",
    "placed": "requests with at least one call placed (an in-call transfer places none)",
    "answered": "a person or a machine picked up",
    "reached": "a person picked up, or an in-call customer's survey began",
    "completed": "answered every question",
    "partial": "hung up part way",
    "opted_out": "asked not to be called again",
}
FUNNEL_NOTES_WITH_TEXTS = {
    **FUNNEL_NOTES,
    "placed": "requests with at least one call placed or their survey's first text sent "
    "(an in-call transfer places none)",
    "texted": "requests whose survey's first text went out",
    "undelivered": "a survey text could not be delivered to the customer",
    "answered": "a person or a machine picked up, or a texted customer replied",
    "reached": "a person picked up, an in-call customer's survey began, or a texted "
    "customer replied",
    "partial": "hung up or stopped replying part way",
    "opted_out": "asked not to be called or texted again",
    "no_reply": "texted, and no reply before the survey expired",
}


def _funnel(row: ReportRow, texts: bool = False) -> list[dict[str, Any]]:
    """The funnel's steps; with `texts` (a text channel has requests in the range), the
    steps only texts have too: texted, undelivered, no reply."""
    notes = FUNNEL_NOTES_WITH_TEXTS if texts else FUNNEL_NOTES
    reasons = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in row.suppressed.items() if v)
    steps = [
        ("received", "Received", row.received, notes["received"]),
        (
            "suppressed",
            "Suppressed",
            row.suppressed_total,
            f"why: {reasons}" if reasons else "a dialing rule said no",
        ),
        ("placed", "Placed", row.placed, notes["placed"]),
        *(
            [
                ("texted", "Texted", row.texted, notes["texted"]),
                ("undelivered", "Undelivered", row.undelivered, notes["undelivered"]),
            ]
            if texts
            else []
        ),
        ("answered", "Answered", row.answered, notes["answered"]),
        ("reached", "Reached", row.reached, notes["reached"]),
        ("completed", "Completed", row.completed, notes["completed"]),
        ("partial", "Partial", row.partial, notes["partial"]),
        ("opted_out", "Opted out", row.opted_out, notes["opted_out"]),
        *([("no_reply", "No reply", row.no_reply, notes["no_reply"])] if texts else []),
    ]
    return [
        {"key": key, "label": label, "count": count, "note": note, "max": row.received or 1}
        for key, label, count, note in steps
    ]


def _agents_page(table: csv_export.Table, page: int) -> dict[str, Any]:
    """One page of the sorted agent table: a contact center of 2,000 agents gets a page
    a browser renders at once; the CSV download has them all."""
    start = (page - 1) * AGENTS_PER_PAGE
    return {
        "agents": replace(table, rows=table.rows[start : start + AGENTS_PER_PAGE]),
        "agents_shown": (start + 1, min(start + AGENTS_PER_PAGE, len(table.rows))),
        "agents_total": len(table.rows),
    }


@dataclass(frozen=True)
class AgentNps:
    """An agent's NPS as the agent table shows it: `aftercall report`'s cell
    (scoring.formats.nps_cell, margin included), its small-sample mark kept apart so the
    page can tie the mark to the note under the table for screen readers."""

    text: str
    small: bool


def agent_nps_cells(rows: list[ReportRow]) -> dict[str, AgentNps]:
    """Each agent's NPS cell, by the agent column's value (as the table's rows hold it,
    sorted and paged; one report row per agent, so the value is a key). An agent without
    an NPS has none: the table's usual dash stands."""
    agent = next(column for column in csv_export.AGENT_COLUMNS if column.key == "agent")
    cells: dict[str, AgentNps] = {}
    for row in rows:
        if row.nps is None:
            continue
        text = nps_cell(row)
        small = not row.nps_reliable
        cells[str(agent.value(row))] = AgentNps(text.removesuffix(SMALL_SAMPLE_MARK), small)
    return cells


def dashboard_page(
    db: Session, filters: Filters, zone: ZoneInfo, contact: Contact
) -> dict[str, Any]:
    """Everything the page shows: a dozen queries or so, whatever the size of the data
    (the rollup answers the trend and agents in one each on PostgreSQL, and each report
    adds a small one over the text conversations); customers' details as far as
    `contact` allows."""
    query = filters.query(zone)
    trend_rows = report(db, replace(query, by=(filters.unit,)))
    # The periods partition the range, so their counts add up to the headline exactly:
    # no third report over the same rows.
    headline = totals(trend_rows)
    agent_rows = report(db, replace(query, by=("agent",)))
    mode_rows, channel_rows = modes_and_channels(db, query)
    offset = (filters.page - 1) * DETRACTORS_PER_PAGE
    unhappy = detractors(db, query, limit=DETRACTORS_PER_PAGE + 1, offset=offset)
    nps_points, csat_points = _trend_points(trend_rows, query, filters.unit)
    return {
        "headline": headline,
        "reliable_min": MIN_RELIABLE_SAMPLE,
        "nps_trend": charts.line_chart(
            nps_points,
            chart_id="nps-trend",
            title="NPS by " + filters.unit,
            low=-100,
            high=100,
            ticks=(-100, -50, 0, 50, 100),
        ),
        "csat_trend": charts.line_chart(
            csat_points,
            chart_id="csat-trend",
            title="CSAT by " + filters.unit,
            low=0,
            high=100,
            ticks=(0, 25, 50, 75, 100),
        ),
        "nps_bars": charts.bar_chart(
            _bars(headline.nps_distribution, NPS_SCALE, NPS_KINDS),
            chart_id="nps-distribution",
            title="NPS answers, 0 to 10",
        ),
        "csat_bars": charts.bar_chart(
            _bars(headline.csat_distribution, CSAT_SCALE, CSAT_KINDS),
            chart_id="csat-distribution",
            title="CSAT answers, 1 to 5",
        ),
        "funnel": _funnel(headline, texts=_has_text_channel(channel_rows)),
        **_agents_page(csv_export.agent_table(agent_rows, filters.sort), filters.agents_page),
        "agent_nps": agent_nps_cells(agent_rows),
        "small_sample_mark": SMALL_SAMPLE_MARK,
        "small_sample_note": SMALL_SAMPLE_NOTE,
        "modes": csv_export.mode_table(mode_rows),
        "channels": csv_export.channel_table(channel_rows),
        "spoken": spoken_share(db, query),
        "trend": csv_export.trend_table(trend_rows, filters.unit),
        "detractors": csv_export.detractor_table(unhappy[:DETRACTORS_PER_PAGE], zone, contact),
        "contact": contact.value,
        "has_next_page": len(unhappy) > DETRACTORS_PER_PAGE,
        "choices": filter_choices(db, query),
    }


def modes_and_channels(db: Session, query: ReportQuery) -> tuple[list[ReportRow], list[ReportRow]]:
    """The range's figures by survey mode and by channel: one report by both (from the
    rollup, keyed by both, where it covers the range), then added up each way (every
    counter adds, so each is the report by that one dimension)."""
    rows = report(db, replace(query, by=("mode", "channel")))
    return regroup(rows, ("mode",)), regroup(rows, ("channel",))


def _has_text_channel(channel_rows: list[ReportRow]) -> bool:
    return any(row.group.get("channel") in TEXT_CHANNELS for row in channel_rows)


@bp.get("/")
def trailing_slash() -> Response:
    return redirect(url_for("dashboard.index", **request.args))


@bp.get("")
def index() -> tuple[str, int] | str:
    try:
        filters = parse_filters(request.args.to_dict())
    except ReportError as exc:
        filters = default_filters()
        with current_runtime().db.session() as db:
            choices = filter_choices(db, filters.query(report_zone()))
        return render_template(
            "dashboard/index.html",
            filters=filters,
            error=str(exc),
            choices=choices,
            mode_choices=MODE_CHOICES,
            channel_choices=CHANNEL_CHOICES,
        ), 400
    zone = report_zone()
    with current_runtime().db.session() as db:
        page = dashboard_page(db, filters, zone, g.user.contact)
    return render_template(
        "dashboard/index.html",
        filters=filters,
        zone=zone.key,
        units=UNITS,
        mode_choices=MODE_CHOICES,
        channel_choices=CHANNEL_CHOICES,
        **page,
    )


# -- CSV ------------------------------------------------------------------------------

EXPORTS = ("agents", "modes", "channels", "trend", "detractors")


def export_table(
    db: Session, name: str, filters: Filters, zone: ZoneInfo, contact: Contact
) -> csv_export.Table:
    """The named table exactly as the page with these filters shows it to a reader with
    `contact`."""
    query = filters.query(zone)
    if name == "agents":
        return csv_export.agent_table(report(db, replace(query, by=("agent",))), filters.sort)
    if name == "modes":
        return csv_export.mode_table(modes_and_channels(db, query)[0])
    if name == "channels":
        return csv_export.channel_table(modes_and_channels(db, query)[1])
    if name == "trend":
        return csv_export.trend_table(report(db, replace(query, by=(filters.unit,))), filters.unit)
    offset = (filters.page - 1) * DETRACTORS_PER_PAGE
    entries = detractors(db, query, limit=DETRACTORS_PER_PAGE, offset=offset)
    return csv_export.detractor_table(entries, zone, contact)


@bp.get("/export.csv")
def export() -> Response:
    name = request.args.get("table", "")
    if name not in EXPORTS:
        abort(400, f"table: expected one of {', '.join(EXPORTS)}")
    try:
        filters = parse_filters(request.args.to_dict())
    except ReportError as exc:
        abort(400, str(exc))
    zone = report_zone()
    with current_runtime().db.session() as db:
        table = export_table(db, name, filters, zone, g.user.contact)
    filename = f"aftercall-{name}-{filters.since}-to-{filters.until}.csv"
    return Response(
        csv_export.to_csv(table),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
