"""The dashboard's Follow-ups pages over HTTP, on SQLite and PostgreSQL: who sees which
(an analyst none, a supervisor their teams', an admin all), the customer as the role
may see them, the list's default, filters, order and pages, and every change (assign,
note, status) through scoring.follow_ups with its history; CSRF and bad input refused
with nothing written. Also `aftercall user teams`, which sets who leads which team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from aftercall.cli import main
from aftercall.web.dashboard import follow_ups as page
from aftercall.web.dashboard.views import SECURITY_HEADERS
from core import users
from core.masking import Contact
from core.models import (
    Answer,
    CallAttempt,
    FollowUp,
    FollowUpChange,
    FollowUpNote,
    RequestState,
    SurveyRequest,
    User,
)
from core.survey_versions import version_for
from core.users import create_user
from scoring import follow_up_figures, follow_ups
from tests.dashboard.conftest import PASSWORD, csrf_from, sign_in
from tests.dashboard.dom import parse, table_rows

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
URL = "/dashboard/follow-ups"
PHONE = "+14155550123"
MASKED_PHONE = "+1 415 ••• ••23"
RECORDING = "https://api.twilio.test/RE0001.mp3"
SPOKEN_NUMBER = "call me on 415 555 0199 about the refund"
# Who signs in: an admin, a lead of each team, a supervisor who leads none, an analyst.
ROLES = {"ada": "admin", "sue": "supervisor", "sam": "supervisor", "lee": "supervisor",
         "ann": "analyst"}  # fmt: skip
TEAMS = {"sue": ["north"], "sam": ["south"]}


@pytest.fixture
def runtime(runtime):
    """The dialer's clock, which stamps every dashboard change, pinned."""
    runtime.now = lambda: NOW
    return runtime


@pytest.fixture
def people(runtime) -> dict[str, int]:
    ids = {}
    with runtime.db.session() as session:
        for name, role in ROLES.items():
            ids[name] = create_user(session, name, PASSWORD, role).id
        session.flush()
        for name, teams in TEAMS.items():
            follow_ups.set_teams(session, ids[name], teams)
    return ids


@pytest.fixture
def signed_in(app, people):
    """A signed-in test client per username, made on first use."""
    clients = {}

    def client_for(name: str):
        if name not in clients:
            client = app.test_client()
            assert sign_in(client, name).status_code == 302
            clients[name] = client
        return clients[name]

    return client_for


@dataclass
class Case:
    """A flagged survey: its request, answers and the follow-up it opened."""

    team: str | None = "north"
    nps: int = 3
    csat: int | None = 1
    comment: str | None = None
    recording_url: str | None = None
    phone: str = PHONE
    survey: str = "post-call"
    owner: str | None = None
    status: str = "new"
    due_in: timedelta = timedelta(hours=24)
    is_test: bool = False
    metadata: dict | None = None


def add(runtime, case: Case | None = None, **fields) -> int:
    """Insert a finished survey and open its follow-up as the sweep would; returns its id."""
    case = case or Case(**fields)
    with runtime.db.session() as session:
        definition = runtime.catalog.get("post-call")
        version = version_for(session, definition)
        count = session.scalar(select(func.count(SurveyRequest.id)))
        request = SurveyRequest(
            phone=case.phone, source_call_id=f"fu-{count + 1}", agent="alice",
            queue="billing", team=case.team, call_ended_at=NOW - timedelta(hours=2),
            survey_name=case.survey, survey_version_id=version.id,
            state=RequestState.COMPLETED, is_test=case.is_test,
            extra=case.metadata or {"ticket_id": f"T-{count + 1}"},
        )  # fmt: skip
        session.add(request)
        session.flush()
        attempt = CallAttempt(request_id=request.id, number=1, status="completed")
        session.add(attempt)
        session.flush()
        answers = [("nps", "nps", case.nps), ("csat", "csat", case.csat)]
        for key, kind, value in answers:
            if value is not None:
                session.add(Answer(request_id=request.id, attempt_id=attempt.id,
                                   survey_version_id=version.id, question_key=key, kind=kind,
                                   value=value, keys=str(value)))  # fmt: skip
        if case.comment or case.recording_url:
            session.add(Answer(request_id=request.id, attempt_id=attempt.id,
                               survey_version_id=version.id, question_key="improve",
                               kind="comment", transcript=case.comment,
                               recording_url=case.recording_url))  # fmt: skip
        session.flush()
        opened = follow_ups.open_follow_up(
            session, request.id, now=NOW - timedelta(hours=1), owners={}, definition=definition
        )
        assert opened is not None
        opened.owner, opened.status = case.owner, case.status
        opened.due_at = NOW + case.due_in
        return opened.id


def listed(client, query: str = "") -> list[int]:
    response = client.get(f"{URL}?{query}" if query else URL)
    assert response.status_code == 200, response.text
    return [int(row["id"]) for row in table_rows(parse(response.text).by_id("follow-ups"))]


def post(client, path: str, data: dict[str, str], token: str | None = None):
    if token is None:
        token = csrf_from(client.get(path.rsplit("/", 1)[0]).text)
    return client.post(path, data={"csrf_token": token, **data})


def changes(runtime, follow_up_id: int) -> list[FollowUpChange]:
    with runtime.db.session() as session:
        return follow_ups.history(session, follow_up_id)


def stored(runtime, follow_up_id: int) -> FollowUp:
    with runtime.db.session() as session:
        return session.get(FollowUp, follow_up_id)


# -- who sees what --------------------------------------------------------------------


def test_an_analyst_gets_an_explanation_and_no_data(runtime, signed_in):
    follow_up_id = add(runtime, owner="ann", comment=SPOKEN_NUMBER, recording_url=RECORDING)
    client = signed_in("ann")
    for path in (URL, f"{URL}?owner=&status=", f"{URL}/{follow_up_id}"):
        response = client.get(path)
        assert response.status_code == 403, path
        html = parse(response.text)
        assert html.by_id("follow-ups-refused")
        assert html.find(id="follow-ups") is None
        for secret in ("5550123", "555 0199", RECORDING, "T-1", "nps 3"):
            assert secret not in response.text, (path, secret)
    token = csrf_from(client.get("/dashboard").text)
    for action, data in (("owner", {"owner": "ann"}), ("notes", {"body": "hi"}),
                         ("status", {"status": "resolved"})):  # fmt: skip
        response = client.post(f"{URL}/{follow_up_id}/{action}", data={"csrf_token": token, **data})
        assert response.status_code == 403
    assert [c.field for c in changes(runtime, follow_up_id)] == ["opened"]
    # No link to a page that would only refuse.
    assert parse(client.get("/dashboard").text).find(id="nav-follow-ups") is None


def test_a_supervisor_sees_and_acts_on_their_teams_only(runtime, signed_in):
    north = add(runtime, team="north")
    south = add(runtime, team="south")
    no_team = add(runtime, team=None)
    sue = signed_in("sue")
    assert listed(sue, "owner=&status=") == [north]
    assert sue.get(f"{URL}/{north}").status_code == 200
    for other in (south, no_team, 999_999, 2**40):
        assert sue.get(f"{URL}/{other}").status_code == 404, other
    token = csrf_from(sue.get(URL).text)
    for action, data in (("owner", {"owner": "sue"}), ("notes", {"body": "mine now"}),
                         ("status", {"status": "resolved"})):  # fmt: skip
        response = sue.post(f"{URL}/{south}/{action}", data={"csrf_token": token, **data})
        assert response.status_code == 404, action
    assert [c.field for c in changes(runtime, south)] == ["opened"]
    assert stored(runtime, south).status == "new"
    # Teams led are read on every request: given south, she sees it at once.
    with runtime.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.username == "sue"))
        follow_ups.set_teams(session, user_id, ["north", "south"])
    assert sorted(listed(sue, "owner=&status=")) == sorted([north, south])


def test_an_admin_sees_every_team_but_never_test_calls(runtime, signed_in):
    north, south, no_team = (add(runtime, team=team) for team in ("north", "south", None))
    test_call = add(runtime, team="north", is_test=True)
    ada = signed_in("ada")
    assert sorted(listed(ada, "owner=&status=")) == sorted([north, south, no_team])
    assert ada.get(f"{URL}/{no_team}").status_code == 200
    assert ada.get(f"{URL}/{test_call}").status_code == 404


def test_a_supervisor_who_leads_no_team_is_told_why_the_list_is_empty(runtime, signed_in):
    add(runtime, team="north")
    response = signed_in("lee").get(f"{URL}?owner=&status=")
    html = parse(response.text)
    assert response.status_code == 200
    assert "aftercall user teams lee" in html.by_id("no-teams").text
    assert table_rows(html.by_id("follow-ups")) == []


def test_the_nav_links_here_for_those_who_may_see_follow_ups(signed_in):
    for name in ("ada", "sue", "lee"):
        nav = parse(signed_in(name).get("/dashboard/surveys").text).by_id("nav-follow-ups")
        assert nav.get("href") == URL
    nav = parse(signed_in("sue").get(URL).text).by_id("nav-follow-ups")
    assert nav.get("aria-current") == "page"


def test_the_pages_carry_the_dashboard_s_security_headers(runtime, signed_in):
    follow_up_id = add(runtime)
    for path in (URL, f"{URL}/{follow_up_id}"):
        response = signed_in("sue").get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
        assert response.headers["Cache-Control"] == "no-store"


def test_signed_out_visitors_are_sent_to_sign_in(runtime, client):
    follow_up_id = add(runtime)
    response = client.get(f"{URL}/{follow_up_id}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/dashboard/login")
    assert client.post(f"{URL}/{follow_up_id}/notes", data={"body": "x"}).status_code == 302


# -- the customer, as the role may see them ---------------------------------------------


def test_the_detail_page_in_full_for_a_team_lead(runtime, signed_in):
    follow_up_id = add(runtime, comment=SPOKEN_NUMBER, recording_url=RECORDING,
                       metadata={"ticket_id": "ZD-4821", "crm": "zendesk"})  # fmt: skip
    response = signed_in("sue").get(f"{URL}/{follow_up_id}")
    assert response.status_code == 200
    html = parse(response.text)
    call = html.by_id("call")
    assert call.find("dd", data_key="phone").text == PHONE
    assert call.find("dd", data_key="agent").text == "alice"
    assert call.find("dd", data_key="queue").text == "billing"
    assert call.find("dd", data_key="team").text == "north"
    assert call.find("dd", data_name="ticket_id").text == "ZD-4821"
    assert call.find("dd", data_name="crm").text == "zendesk"
    answers = html.by_id("answers")
    values = {
        tr.get("data-question"): tr for tr in answers.find_all("tr") if tr.get("data-question")
    }
    assert list(values) == ["nps", "csat", "improve"]
    assert values["nps"].find("td", data_key="value").text == "3"
    assert values["csat"].find("td", data_key="value").text == "1"
    assert values["improve"].find("td", data_key="transcript").text == SPOKEN_NUMBER
    link = values["improve"].find("td", data_key="recording").find("a")
    assert link is not None and link.get("href") == RECORDING
    state = html.by_id("state")
    assert state.find("dd", data_key="status").get("data-value") == "new"
    assert [tr.get("data-field") for tr in html.by_id("history").find_all("tr")
            if tr.get("data-field")] == ["opened"]  # fmt: skip


def test_a_recording_address_that_is_no_web_address_is_no_link(runtime, signed_in):
    follow_up_id = add(runtime, comment="the hold music", recording_url="javascript:alert(1)")
    response = signed_in("sue").get(f"{URL}/{follow_up_id}")
    assert "javascript:" not in response.text
    row = parse(response.text).find("tr", data_question="improve")
    assert row.find("a") is None


def test_a_role_with_a_masked_view_gets_the_customer_masked(runtime, signed_in, monkeypatch):
    """No role that sees follow-ups sees customers masked today; one that did (a role
    made so later) gets what the detractor list gives a masked reader."""
    follow_up_id = add(runtime, comment=SPOKEN_NUMBER, recording_url=RECORDING,
                       metadata={"ticket_id": "ZD-4821"})  # fmt: skip
    with runtime.db.session() as session:
        follow_up = session.get(FollowUp, follow_up_id)
        follow_ups.add_note(session, follow_up, "called 415 555 0123, no answer",
                            author="sam", source="dashboard", at=NOW)  # fmt: skip
    monkeypatch.setitem(users._CONTACT, "supervisor", Contact.MASKED)
    response = signed_in("sue").get(f"{URL}/{follow_up_id}")
    assert response.status_code == 200
    html = parse(response.text)
    assert html.by_id("call").find("dd", data_key="phone").text == MASKED_PHONE
    for secret in (PHONE, "5550123", "555 0199", "555 0123", RECORDING, "4821"):
        assert secret not in response.text, secret
    assert html.by_id("masked-note")
    assert html.by_id("answers").find("td", data_key="recording") is None
    assert "call me on ••• ••• •••• about the refund" in response.text


def test_masked_text_hides_digit_runs_and_full_text_keeps_them():
    assert page.shown_text(SPOKEN_NUMBER, Contact.FULL) == SPOKEN_NUMBER
    assert page.shown_text(SPOKEN_NUMBER, Contact.MASKED) == (
        "call me on ••• ••• •••• about the refund"
    )
    assert page.shown_text(None, Contact.MASKED) is None


# -- the list ---------------------------------------------------------------------------


def test_the_default_is_my_open_follow_ups(runtime, signed_in):
    mine = add(runtime, owner="sue")
    contacted = add(runtime, owner="sue", status="contacted")
    add(runtime, owner="sue", status="resolved")
    others = add(runtime, owner="sam")  # sam's, in sue's team
    unassigned = add(runtime)
    sue = signed_in("sue")
    assert listed(sue) == [mine, contacted]
    html = parse(sue.get(URL).text)
    assert html.by_id("view-mine").get("aria-current") == "page"
    form = html.by_id("follow-up-filters")
    assert form.find("select", name="owner").find("option", selected="").get("value") == "sue"
    assert form.find("select", name="status").find("option", selected="").get("value") == "open"
    all_open = html.by_id("view-all-open").get("href")
    assert sorted(listed(sue, all_open.split("?", 1)[1])) == sorted(
        [mine, contacted, others, unassigned]
    )


def test_overdue_first_marked_in_words(runtime, signed_in):
    later = add(runtime, owner="sue", due_in=timedelta(hours=30))
    soon = add(runtime, owner="sue", due_in=timedelta(hours=2))
    late = add(runtime, owner="sue", due_in=-timedelta(hours=3))
    later_still = add(runtime, owner="sue", due_in=timedelta(days=5))
    very_late = add(runtime, owner="sue", due_in=-timedelta(days=2))
    response = signed_in("sue").get(URL)
    html = parse(response.text)
    rows = [tr for tr in html.by_id("follow-ups").find_all("tr") if tr.get("data-id")]
    assert [int(tr.get("data-id")) for tr in rows] == [very_late, late, soon, later, later_still]
    assert [tr.get("data-overdue") for tr in rows] == ["yes", "yes", "no", "no", "no"]
    late_due = rows[1].find("td", data_key="due").text
    assert "Overdue" in late_due and "overdue by 3 h" in late_due
    assert "Overdue" not in rows[2].find("td", data_key="due").text
    assert "due in 2 h" in rows[2].find("td", data_key="due").text
    row = table_rows(html.by_id("follow-ups"))[0]
    assert row["scores"] == "nps=3 csat=1"
    # The rule's reasons, in the order the database read the answers.
    assert sorted(row["reason"].split("; ")) == ["csat 1 <= 2", "nps 3 <= 6"]
    assert (row["agent"], row["queue"], row["team"], row["owner"], row["status"]) == (
        "alice",
        "billing",
        "north",
        "sue",
        "new",
    )


@pytest.fixture
def spread(runtime, people) -> dict[str, int]:
    """Follow-ups in every status, owned and not, two teams, overdue and not."""
    return {
        "new_mine": add(runtime, owner="sue"),
        "contacted_mine": add(runtime, owner="sue", status="contacted"),
        "resolved_mine": add(runtime, owner="sue", status="resolved"),
        "wont_fix": add(runtime, owner="ada", status="wont_fix"),
        "unassigned_late": add(runtime, due_in=-timedelta(hours=1)),
        "resolved_late": add(runtime, status="resolved", due_in=-timedelta(hours=5)),
        "south": add(runtime, team="south", owner="sam"),
        "south_late": add(runtime, team="south", due_in=-timedelta(hours=2)),
    }


@pytest.mark.parametrize(
    ("user", "query", "expected"),
    [
        ("sue", "", {"new_mine", "contacted_mine"}),
        ("sue", "owner=sue&status=", {"new_mine", "contacted_mine", "resolved_mine"}),
        ("sue", "owner=sue&status=resolved", {"resolved_mine"}),
        ("sue", "owner=&status=new", {"new_mine", "unassigned_late"}),
        ("sue", "owner=&status=contacted", {"contacted_mine"}),
        ("sue", "owner=&status=wont_fix", {"wont_fix"}),
        ("sue", "owner=no+owner&status=open", {"unassigned_late"}),
        ("sue", "owner=no+owner&status=", {"unassigned_late", "resolved_late"}),
        ("sue", "owner=&status=&overdue=1", {"unassigned_late"}),
        ("sue", "owner=&status=&team=south", set()),
        ("sue", "owner=&status=&survey=no-such-survey", set()),
        ("sue", "owner=ada&status=", {"wont_fix"}),
        ("ada", "owner=&status=&team=south", {"south", "south_late"}),
        ("ada", "owner=&overdue=1", {"unassigned_late", "south_late"}),
        ("ada", "owner=&status=&survey=post-call&team=north&overdue=1", {"unassigned_late"}),
        ("ada", "owner=sam&status=open", {"south"}),
    ],
)
def test_filters(signed_in, spread, user, query, expected):
    names = {follow_up_id: name for name, follow_up_id in spread.items()}
    assert {names[i] for i in listed(signed_in(user), query)} == expected


def test_filter_choices_offer_only_what_the_user_may_see(signed_in, spread):
    form = parse(signed_in("sue").get(URL).text).by_id("follow-up-filters")
    teams = [o.get("value") for o in form.find("select", name="team").find_all("option")]
    assert teams == ["", "north"]
    owners = [o.get("value") for o in form.find("select", name="owner").find_all("option")]
    assert owners[:3] == ["sue", "no owner", ""]
    # Who may own one (admins and supervisors) and who owns one she sees; no analyst.
    assert set(owners[3:]) == {"ada", "lee", "sam"}
    form = parse(signed_in("ada").get(URL).text).by_id("follow-up-filters")
    teams = [o.get("value") for o in form.find("select", name="team").find_all("option")]
    assert teams == ["", "north", "south"]


def test_pages_of_follow_ups(runtime, signed_in):
    ids = [add(runtime, owner="sue", due_in=timedelta(hours=i + 1)) for i in range(30)]
    sue = signed_in("sue")
    first = parse(sue.get(URL).text)
    assert [int(r["id"]) for r in table_rows(first.by_id("follow-ups"))] == ids[:25]
    assert first.find(id="previous-page") is None
    next_href = first.by_id("next-page").get("href")
    assert "page=2" in next_href and "owner=sue" in next_href
    second = parse(sue.get(next_href).text)
    assert [int(r["id"]) for r in table_rows(second.by_id("follow-ups"))] == ids[25:]
    assert second.find(id="next-page") is None
    assert second.by_id("previous-page")
    assert listed(sue, "page=3") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=closed", "status"),
        ("status=OPEN", "status"),
        ("overdue=yes", "overdue"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=10001", "page"),
        ("page=%D9%A3", "page"),  # an Arabic-Indic three: a digit to isdigit(), not a page
        ("owner=" + "x" * 101, "owner"),
        ("team=" + "t" * 201, "team"),
        ("survey=a%00b", "survey"),
        ("team=north%0Asouth", "team"),
    ],
)
def test_bad_filters_are_400_with_the_message_by_the_field(runtime, signed_in, query, field):
    add(runtime, owner="sue")
    response = signed_in("sue").get(f"{URL}?{query}")
    assert response.status_code == 400
    html = parse(response.text)
    error = html.by_id("filter-error")
    assert error.get("data-field") == field
    assert error.get("role") == "alert"
    invalid = html.by_id("follow-up-filters").find(aria_invalid="true")
    if field == "page":  # no field on the form: the pages are links
        assert invalid is None
    else:
        assert invalid is not None and invalid.get("name") == field


def figure_rows(html) -> dict[str, dict[str, str]]:
    table = html.by_id("figures")
    rows = {}
    for tr in table.find_all("tr"):
        cells = tr.find_all("td")
        if tr.get("data-team") is not None or tr.get("id") == "figures-total":
            key = tr.get("data-team") if tr.get("id") != "figures-total" else "total"
            rows[key] = {c.get("data-key"): c.get("data-value") for c in cells if c.get("data-key")}
    return rows


def test_the_figures_of_the_last_30_days_by_team(runtime, signed_in):
    resolved = add(runtime, team="north")
    contacted = add(runtime, team="north")
    add(runtime, team="north", due_in=-timedelta(hours=2))  # overdue
    add(runtime, team="south", status="wont_fix")
    old = add(runtime, team="south")
    with runtime.db.session() as session:
        for follow_up_id, status, hours in ((resolved, "resolved", 3), (contacted, "contacted", 1)):
            row = session.get(FollowUp, follow_up_id)
            follow_ups.update(session, row, follow_ups.Change(status=status), actor="sue",
                              source="dashboard", at=row.opened_at + timedelta(hours=hours))  # fmt: skip
        session.get(FollowUp, old).opened_at = NOW - timedelta(days=40)
    html = parse(signed_in("ada").get(URL).text)
    shown = figure_rows(html)
    assert set(shown) == {"north", "south", "total"}
    assert shown["north"] == {
        "opened": "3", "open": "2", "overdue": "1",
        "median_hours_to_first_contact": "2.000", "median_hours_to_resolution": "3.000",
        "sla_share": "1.0000",
    }  # fmt: skip
    assert (shown["south"]["opened"], shown["south"]["sla_share"]) == ("1", "0.0000")
    assert shown["total"]["opened"] == "4"
    with runtime.db.session() as session:
        groups, total = follow_up_figures.with_total(
            session, ("team",), visible=follow_ups.visible(follow_ups.Viewer("ada", "admin")),
            now=NOW, since=page.figures_since(NOW, ZoneInfo("UTC")),
        )  # fmt: skip
    assert shown["total"]["overdue"] == str(total.overdue) == "1"
    assert page.figures_since(NOW, ZoneInfo("UTC")) == datetime(2026, 10, 25, tzinfo=UTC)
    assert [g.group["team"] for g in groups] == ["north", "south"]
    # A team lead's figures are their teams' only: one row, no total.
    assert set(figure_rows(parse(signed_in("sue").get(URL).text))) == {"north"}


# -- changes ----------------------------------------------------------------------------


def test_assign_note_and_resolve_are_applied_and_recorded(runtime, signed_in):
    follow_up_id = add(runtime)
    sue = signed_in("sue")
    path = f"{URL}/{follow_up_id}"

    response = post(sue, f"{path}/owner", {"owner": "sue"}, csrf_from(sue.get(path).text))
    assert response.status_code == 303
    assert response.headers["Location"] == path
    flash = parse(sue.get(path).text).find("p", data_category="done")
    assert flash is not None and flash.text == "Assigned to sue."

    token = csrf_from(sue.get(path).text)
    assert (
        post(sue, f"{path}/notes", {"body": "  Called, left a message.  "}, token).status_code
        == 303
    )
    assert post(sue, f"{path}/status", {"status": "contacted"}, token).status_code == 303
    assert post(sue, f"{path}/status", {"status": "resolved"}, token).status_code == 303

    row = stored(runtime, follow_up_id)
    assert (row.owner, row.status, row.changed_by) == ("sue", "resolved", "sue")
    assert row.first_contacted_at == NOW and row.closed_at == NOW and row.changed_at == NOW
    with runtime.db.session() as session:
        (note,) = session.scalars(select(FollowUpNote)).all()
        assert (note.author, note.body, note.created_at) == ("sue", "Called, left a message.", NOW)
    history = [(c.field, c.old_value, c.new_value, c.actor, c.source, c.changed_at, c.applied)
               for c in changes(runtime, follow_up_id)[1:]]  # fmt: skip
    assert history == [
        ("owner", None, "sue", "sue", "dashboard", NOW, True),
        ("note", None, "Called, left a message.", "sue", "dashboard", NOW, True),
        ("status", "new", "contacted", "sue", "dashboard", NOW, True),
        ("status", "contacted", "resolved", "sue", "dashboard", NOW, True),
    ]
    html = parse(sue.get(path).text)
    shown = [(tr.get("data-field"), tr.find("td", data_key="actor").text,
              tr.find("td", data_key="source").get("data-value"), tr.get("data-applied"))
             for tr in html.by_id("history").find_all("tr") if tr.get("data-field")]  # fmt: skip
    assert shown == [
        ("opened", "system", "system", "yes"),
        ("owner", "sue", "dashboard", "yes"),
        ("note", "sue", "dashboard", "yes"),
        ("status", "sue", "dashboard", "yes"),
        ("status", "sue", "dashboard", "yes"),
    ]
    assert html.by_id("notes").find("span", data_key="body").text == "Called, left a message."
    # Resolved: off her default list, on the resolved one.
    assert listed(sue) == []
    assert listed(sue, "owner=sue&status=resolved") == [follow_up_id]


def test_unassign_and_assign_to_a_colleague_who_may_see_it(runtime, signed_in):
    follow_up_id = add(runtime, owner="sue")
    ada = signed_in("ada")
    path = f"{URL}/{follow_up_id}"
    token = csrf_from(ada.get(path).text)
    options = parse(ada.get(path).text).by_id("owner").find_all("option")
    # Unassigned, then who may see it: admins and north's lead; not sam (south), not lee.
    assert [o.get("value") for o in options] == ["", "ada", "sue"]
    assert post(ada, f"{path}/owner", {"owner": ""}, token).status_code == 303
    assert stored(runtime, follow_up_id).owner is None
    assert post(ada, f"{path}/owner", {"owner": "ada"}, token).status_code == 303
    assert stored(runtime, follow_up_id).owner == "ada"
    assert [(c.old_value, c.new_value, c.actor) for c in changes(runtime, follow_up_id)[1:]] == [
        ("sue", None, "ada"),
        (None, "ada", "ada"),
    ]


def test_the_same_status_again_changes_nothing(runtime, signed_in):
    follow_up_id = add(runtime, status="contacted")
    sue = signed_in("sue")
    path = f"{URL}/{follow_up_id}"
    assert post(sue, f"{path}/status", {"status": "contacted"}).status_code == 303
    assert parse(sue.get(path).text).find("p", data_category="note").text == (
        "Nothing changed: it was already so."
    )
    assert [c.field for c in changes(runtime, follow_up_id)] == ["opened"]


@pytest.mark.parametrize(
    ("action", "data", "field", "message"),
    [
        ("owner", {"owner": "nobody-here"}, "owner", "no dashboard user is named 'nobody-here'"),
        ("owner", {"owner": "ann"}, "owner", "ann cannot see this follow-up"),
        ("owner", {"owner": "sam"}, "owner", "sam cannot see this follow-up"),
        ("owner", {"owner": "lee"}, "owner", "lee cannot see this follow-up"),
        ("owner", {"owner": "x" * 101}, "owner", "at most 100 characters"),
        ("status", {"status": "closed"}, "status", "status must be one of"),
        ("status", {}, "status", "status must be one of"),
        ("notes", {"body": "   "}, "body", "a note needs some text"),
        ("notes", {}, "body", "a note needs some text"),
        ("notes", {"body": "x" * 4001}, "body", "a note is at most 4000 characters"),
        ("notes", {"body": "a\x00b"}, "body", "NUL"),
    ],
)
def test_a_refused_change_is_400_by_its_field_and_writes_nothing(
    runtime, signed_in, action, data, field, message
):
    follow_up_id = add(runtime, owner="sue")
    sue = signed_in("sue")
    response = post(sue, f"{URL}/{follow_up_id}/{action}", data)
    assert response.status_code == 400
    html = parse(response.text)
    error = html.by_id(f"{field}-error")
    assert message in error.text and error.get("role") == "alert"
    control = html.by_id(field)
    assert control.get("aria-invalid") == "true"
    assert control.get("aria-describedby") == f"{field}-error"
    row = stored(runtime, follow_up_id)
    assert (row.owner, row.status, row.changed_at) == ("sue", "new", NOW - timedelta(hours=1))
    assert [c.field for c in changes(runtime, follow_up_id)] == ["opened"]
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(FollowUpNote.id))) == 0


def test_a_refused_note_keeps_what_was_typed(runtime, signed_in):
    follow_up_id = add(runtime)
    body = "x" * 4001
    response = post(signed_in("sue"), f"{URL}/{follow_up_id}/notes", {"body": body})
    assert response.status_code == 400
    assert parse(response.text).by_id("body").text == body


@pytest.mark.parametrize("token", ["", "not-the-token"])
def test_a_change_without_the_session_s_csrf_token_is_refused(runtime, signed_in, token):
    follow_up_id = add(runtime)
    sue = signed_in("sue")
    for action, data in (("owner", {"owner": "sue"}), ("notes", {"body": "hi"}),
                         ("status", {"status": "resolved"})):  # fmt: skip
        response = sue.post(f"{URL}/{follow_up_id}/{action}", data={"csrf_token": token, **data})
        assert response.status_code == 400
        assert "expired" in response.text
    response = sue.post(f"{URL}/{follow_up_id}/notes", data={"body": "no token at all"})
    assert response.status_code == 400
    assert [c.field for c in changes(runtime, follow_up_id)] == ["opened"]
    assert stored(runtime, follow_up_id).owner is None


def test_a_newer_crm_change_stands_and_the_dashboard_s_is_kept_unapplied(runtime, signed_in):
    follow_up_id = add(runtime)
    with runtime.db.session() as session:
        row = session.get(FollowUp, follow_up_id)
        follow_ups.update(session, row, follow_ups.Change(status="contacted"),
                          actor="api:zendesk", source="api", at=NOW + timedelta(minutes=5))  # fmt: skip
    sue = signed_in("sue")
    path = f"{URL}/{follow_up_id}"
    assert post(sue, f"{path}/status", {"status": "wont_fix"}).status_code == 303
    flash = parse(sue.get(path).text).find("p", data_category="error")
    assert flash is not None and "Not applied" in flash.text and "api:zendesk" in flash.text
    assert stored(runtime, follow_up_id).status == "contacted"
    last = changes(runtime, follow_up_id)[-1]
    assert (last.new_value, last.actor, last.source, last.applied) == (
        "wont_fix",
        "sue",
        "dashboard",
        False,
    )
    row = parse(sue.get(path).text).by_id("history").find_all("tr", data_field="status")[-1]
    assert row.get("data-applied") == "no"


# -- aftercall user teams ---------------------------------------------------------------


@pytest.fixture
def cli(runtime, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)

    def run(*args: str):
        return CliRunner().invoke(main, ["user", *args])

    return run


def led(runtime, username: str) -> list[str]:
    with runtime.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.username == username))
        return sorted(follow_ups.teams_led(session, user_id))


def test_user_teams_sets_shows_replaces_and_clears(cli, runtime, people):
    result = cli("teams", "lee", "west", " east ", "west")
    assert result.exit_code == 0, result.output
    assert result.output == "lee leads east, west\n"
    assert led(runtime, "lee") == ["east", "west"]
    assert cli("teams", "lee").output == "lee leads east, west\n"
    assert cli("teams", "lee", "north").exit_code == 0
    assert led(runtime, "lee") == ["north"]
    listing = cli("list").output.splitlines()
    assert next(line for line in listing if line.startswith("lee ")).endswith("leads north")
    assert next(line for line in listing if line.startswith("ann ")).endswith("never")
    assert cli("teams", "lee", "--clear").output == "lee leads no team\n"
    assert led(runtime, "lee") == []


def test_deleting_a_team_lead_deletes_the_teams_they_led(cli, runtime, people):
    result = cli("delete", "sue")
    assert result.exit_code == 0, result.output
    with runtime.db.session() as session:
        assert session.scalar(select(User.id).where(User.username == "sue")) is None
        assert follow_ups.teams_led(session, people["sue"]) == frozenset()
    assert led(runtime, "sam") == ["south"]


def test_user_teams_says_when_the_role_makes_teams_moot(cli, people):
    result = cli("teams", "ann", "north")
    assert result.exit_code == 0
    assert "note: ann is an analyst, who sees no follow-ups" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody", "north"), "no user named 'nobody'"),
        (("lee", "north", "--clear"), "give teams or --clear, not both"),
        (("lee", "  "), "a team name must not be blank"),
        (("lee", "t" * 201), "a team name is at most 200 characters"),
    ],
)
def test_user_teams_refuses(cli, runtime, people, args, message):
    result = cli("teams", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert led(runtime, "lee") == []
