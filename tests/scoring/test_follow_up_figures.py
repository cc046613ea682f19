"""Follow-up figures (scoring.follow_up_figures): counts, overdue, medians, the SLA share,
grouping, who sees which, test calls left out, and `aftercall report follow-ups`; on
SQLite and PostgreSQL (the `runtime` fixture), which must give the same numbers."""

from __future__ import annotations

import csv
import io
import json
import random
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import true

from aftercall.cli import main
from aftercall.cli import report as cli_report
from aftercall.wiring import runtime_from_settings
from core.models import FollowUp, RequestState, SurveyRequest
from scoring.follow_up_figures import (
    FigureError,
    FollowUpFigures,
    figures,
    to_csv,
    total,
    with_total,
)
from scoring.follow_ups import Viewer, visible

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(days=10)  # north's follow-ups opened then
T1 = NOW - timedelta(days=5)  # south's
OLD = NOW - timedelta(days=60)  # west's: before the range most tests ask for
SINCE = NOW - timedelta(days=30)
ADMIN = visible(Viewer("root", "admin"))
H = timedelta(hours=1)


@dataclass
class Case:
    team: str | None
    status: str
    opened: datetime
    due: datetime
    contacted: datetime | None = None
    closed: datetime | None = None
    owner: str | None = None
    survey: str = "post-call"
    is_test: bool = False


def add(runtime, cases: list[Case]) -> None:
    """Each case as a request and its follow-up, as scoring.follow_ups leaves them."""
    with runtime.db.session() as session:
        for case in cases:
            request = SurveyRequest(
                phone="+14155550123",
                source_call_id=f"fu-{random.getrandbits(64):x}",
                agent="alice",
                queue="billing",
                team=case.team,
                call_ended_at=case.opened - H,
                survey_name=case.survey,
                state=RequestState.COMPLETED,
                is_test=case.is_test,
            )
            session.add(request)
            session.flush()
            session.add(
                FollowUp(
                    request_id=request.id,
                    survey_name=case.survey,
                    agent="alice",
                    queue="billing",
                    team=case.team,
                    is_test=case.is_test,
                    reason="nps 3 <= 6",
                    owner=case.owner,
                    status=case.status,
                    opened_at=case.opened,
                    due_at=case.due,
                    first_contacted_at=case.contacted,
                    closed_at=case.closed,
                    changed_at=case.closed or case.contacted or case.opened,
                    changed_by="system",
                )
            )


SUBSECOND = timedelta(milliseconds=900)

CASES = [
    # north, owned by nina, all opened at T0 and due 48 h later.
    Case("north", "new", T0, T0 + 48 * H, owner="nina"),  # overdue
    Case("north", "new", NOW - H, NOW + 47 * H, owner="nina"),  # open, not yet due
    Case("north", "contacted", T0, T0 + 48 * H, contacted=T0 + 2 * H, owner="nina"),  # overdue
    # Opened 0.9 s past the second, contacted 0.2 s past: 1 h, the stamps cut to seconds.
    Case("north", "resolved", T0 + SUBSECOND, T0 + 48 * H,
         contacted=T0 + H + timedelta(milliseconds=200), closed=T0 + 10 * H, owner="nina"),
    Case("north", "resolved", T0, T0 + 48 * H, contacted=T0 + 30 * H, closed=T0 + 72 * H,
         owner="nina"),  # resolved late
    Case("north", "wont_fix", T0, T0 + 48 * H, contacted=T0 + 4 * H, closed=T0 + 4 * H,
         owner="nina"),
    # south: resolved exactly when due (within the SLA), and one due exactly now (not
    # overdue yet), unassigned.
    Case("south", "resolved", T1, T1 + 24 * H, contacted=T1 + 24 * H, closed=T1 + 24 * H,
         owner="sam", survey="billing-csat"),
    Case("south", "new", NOW - 24 * H, NOW),
    # No team: an in-call survey no support call claimed.
    Case(None, "new", T1, T1 + 24 * H),
    # A test call's, overdue and resolved: counts nowhere, whoever looks.
    Case("north", "new", T0, T0 + H, owner="nina", is_test=True),
    Case("south", "resolved", T1, T1 + H, contacted=T1, closed=T1, is_test=True),
    # Before SINCE.
    Case("west", "new", OLD, OLD + 48 * H, owner="wes"),
]  # fmt: skip


@pytest.fixture
def seeded(runtime):
    add(runtime, CASES)
    return runtime


def hours(row: FollowUpFigures) -> tuple[float | None, float | None]:
    return row.median_hours_to_first_contact, row.median_hours_to_resolution


def by_team(rows: list[FollowUpFigures]) -> dict[str | None, FollowUpFigures]:
    return {row.group["team"]: row for row in rows}


def test_each_team_s_figures(seeded):
    with seeded.db.session() as session:
        rows = figures(session, ("team",), visible=ADMIN, now=NOW, since=SINCE)
    assert [row.group for row in rows] == [{"team": "north"}, {"team": "south"}, {"team": None}]
    north, south, nobody = rows
    assert (north.opened, north.open, north.overdue) == (6, 3, 2)
    # First contacts 2, 1, 30 and 4 hours after opening; resolutions 10 and 72 hours.
    assert north.contacted == 4
    assert hours(north) == (3.0, 41.0)
    assert (north.resolved, north.wont_fix, north.resolved_in_sla) == (2, 1, 1)
    assert north.sla_share == pytest.approx(1 / 3)
    assert (south.opened, south.open, south.overdue) == (2, 1, 0)
    assert hours(south) == (24.0, 24.0)
    assert (south.resolved_in_sla, south.closed, south.sla_share) == (1, 1, 1.0)
    assert (nobody.opened, nobody.open, nobody.overdue, nobody.contacted) == (1, 1, 1, 0)
    assert hours(nobody) == (None, None)
    assert nobody.sla_share is None


def test_the_total_is_its_own_median_not_a_sum_of_medians(seeded):
    with seeded.db.session() as session:
        everything = total(session, visible=ADMIN, now=NOW, since=SINCE)
        ungrouped = figures(session, (), visible=ADMIN, now=NOW, since=SINCE)
    assert ungrouped == [everything]
    assert everything.group == {}
    assert (everything.opened, everything.open, everything.overdue) == (9, 5, 3)
    # Contacts 2, 1, 30, 4, 24 hours: median 4; resolutions 10, 72, 24: median 24.
    assert hours(everything) == (4.0, 24.0)
    assert (everything.resolved_in_sla, everything.closed) == (2, 4)
    assert everything.sla_share == 0.5


@pytest.mark.parametrize("by", [("team",), ("owner",), ("survey", "team"), ()])
def test_with_total_reads_once_what_figures_and_total_give_apart(seeded, by):
    south_lead = visible(Viewer("sam", "supervisor", frozenset({"south"})))
    for seen in (ADMIN, south_lead, visible(Viewer("ann", "analyst"))):
        with seeded.db.session() as session:
            apart = (
                figures(session, by, visible=seen, now=NOW, since=SINCE),
                total(session, visible=seen, now=NOW, since=SINCE),
            )
            together = with_total(session, by, visible=seen, now=NOW, since=SINCE)
        assert together == apart
    with seeded.db.session() as session:
        rows, everything = with_total(session, by, visible=ADMIN, now=NOW)
    # The group without a team (or owner) is a group, not the total, though neither has
    # a team: all ten are in the groups, and once more in the total.
    assert everything.group == {} and everything.opened == 10
    assert sum(row.opened for row in rows) == 10
    assert (rows == [everything]) is not bool(by)


def test_since_and_until_are_on_the_opening_time(seeded):
    with seeded.db.session() as session:
        assert total(session, visible=ADMIN, now=NOW).opened == 10  # west's too
        west = figures(session, ("team",), visible=ADMIN, now=NOW, until=SINCE)
        assert [(row.group, row.opened, row.overdue) for row in west] == [({"team": "west"}, 1, 1)]
        # Until excludes its moment: north's follow-up opened an hour ago is left out.
        earlier = total(session, visible=ADMIN, now=NOW, since=SINCE, until=NOW - H)
        assert (earlier.opened, earlier.open) == (8, 4)
        with pytest.raises(FigureError, match="since must be before until"):
            total(session, visible=ADMIN, now=NOW, since=NOW, until=NOW)


def test_overdue_follows_now(seeded):
    with seeded.db.session() as session:
        later = total(session, visible=ADMIN, now=NOW + timedelta(seconds=1), since=SINCE)
        before = total(session, visible=ADMIN, now=T0, since=SINCE)
    assert later.overdue == 4  # south's due exactly at NOW is late a second later
    assert before.overdue == 0


def test_grouped_by_owner_and_by_several(seeded):
    with seeded.db.session() as session:
        owners = figures(session, ["owner"], visible=ADMIN, now=NOW, since=SINCE)
        both = figures(session, "survey,team", visible=ADMIN, now=NOW, since=SINCE)
    assert [(row.group["owner"], row.opened, row.label("owner")) for row in owners] == [
        ("nina", 6, "nina"), ("sam", 1, "sam"), (None, 2, "unassigned"),
    ]  # fmt: skip
    assert [(row.group, row.opened) for row in both] == [
        ({"survey": "billing-csat", "team": "south"}, 1),
        ({"survey": "post-call", "team": "north"}, 6),
        ({"survey": "post-call", "team": "south"}, 1),
        ({"survey": "post-call", "team": None}, 1),
    ]
    assert [hours(row) for row in both] == [(24.0, 24.0), (3.0, 41.0), (None, None), (None, None)]


@pytest.mark.parametrize("by", [("agent",), ("team", "team"), ("team,",), ("day",)])
def test_unknown_or_repeated_groups_are_refused(runtime, by):
    with runtime.db.session() as session, pytest.raises(FigureError):
        figures(session, by, visible=ADMIN, now=NOW)


def test_test_calls_never_count_even_when_the_condition_lets_everything_through(seeded):
    with seeded.db.session() as session:
        everything = total(session, visible=true(), now=NOW, since=SINCE)
        rows = figures(session, ("team",), visible=true(), now=NOW, since=SINCE)
    assert (everything.opened, everything.overdue, everything.resolved) == (9, 3, 3)
    assert by_team(rows)["south"].opened == 2


def test_a_supervisor_sees_the_figures_of_the_teams_they_lead(seeded):
    south_lead = visible(Viewer("sam", "supervisor", frozenset({"south"})))
    analyst = visible(Viewer("ann", "analyst"))
    with seeded.db.session() as session:
        theirs = figures(session, ("team",), visible=south_lead, now=NOW, since=SINCE)
        their_total = total(session, visible=south_lead, now=NOW, since=SINCE)
        nothing = figures(session, ("team",), visible=analyst, now=NOW)
        nothing_total = total(session, visible=analyst, now=NOW)
    assert [row.group for row in theirs] == [{"team": "south"}]
    assert their_total.opened == 2 and hours(their_total) == (24.0, 24.0)
    assert nothing == []
    assert nothing_total == FollowUpFigures(group={})
    assert nothing_total.to_json()["sla_share"] is None


def test_nothing_yet(runtime):
    with runtime.db.session() as session:
        assert figures(session, ("team", "owner"), visible=ADMIN, now=NOW) == []
        empty = total(session, visible=ADMIN, now=NOW)
    assert empty.to_json() == {
        "opened": 0, "open": 0, "overdue": 0, "contacted": 0, "resolved": 0, "wont_fix": 0,
        "closed": 0, "resolved_in_sla": 0, "sla_share": None,
        "median_hours_to_first_contact": None, "median_hours_to_resolution": None,
    }  # fmt: skip


def test_as_json_and_csv(seeded):
    with seeded.db.session() as session:
        rows = figures(session, ("team",), visible=ADMIN, now=NOW, since=SINCE)
    assert rows[0].to_json() == {
        "team": "north", "opened": 6, "open": 3, "overdue": 2, "contacted": 4, "resolved": 2,
        "wont_fix": 1, "closed": 3, "resolved_in_sla": 1, "sla_share": 0.3333,
        "median_hours_to_first_contact": 3.0, "median_hours_to_resolution": 41.0,
    }  # fmt: skip
    assert rows[2].to_json()["team"] is None
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows, ("team",)))))
    assert [(r["team"], r["opened"], r["sla_share"]) for r in parsed] == [
        ("north", "6", "0.3333"), ("south", "2", "1.0"), ("unattributed", "1", ""),
    ]  # fmt: skip


# -- against a plain computation, over random histories ------------------------------------


def random_cases(rng: random.Random, count: int) -> list[Case]:
    cases = []
    for _ in range(count):
        # Whole and fractional seconds: the stamps are cut to the second either way.
        opened = NOW - timedelta(
            seconds=rng.randrange(40 * 86400), microseconds=rng.randrange(10**6)
        )
        due = opened + timedelta(hours=rng.choice([24, 48, 72]))
        status = rng.choice(["new", "contacted", "resolved", "wont_fix"])
        contacted = closed = None
        if status != "new":
            contacted = opened + timedelta(seconds=rng.randrange(1, 5 * 86400),
                                           microseconds=rng.randrange(10**6))  # fmt: skip
        if status in ("resolved", "wont_fix"):
            closed = contacted + timedelta(seconds=rng.randrange(0, 3 * 86400))
        cases.append(
            Case(
                team=rng.choice(["north", "south", None]),
                status=status,
                opened=opened,
                due=due,
                contacted=contacted,
                closed=closed,
                owner=rng.choice(["nina", "sam", None]),
                is_test=rng.random() < 0.1,
            )
        )
    return cases


def whole_seconds(start: datetime, end: datetime) -> int:
    return int(end.replace(microsecond=0).timestamp() - start.replace(microsecond=0).timestamp())


def expected(cases: list[Case], by: tuple[str, ...]) -> dict[tuple, dict]:
    """What figures() should say, counted one follow-up at a time."""
    groups: dict[tuple, list[Case]] = defaultdict(list)
    for case in cases:
        if not case.is_test and case.opened >= SINCE:
            groups[tuple(getattr(case, name) for name in by)].append(case)
    result = {}
    for key, members in groups.items():
        contact = [whole_seconds(c.opened, c.contacted) for c in members if c.contacted]
        resolution = [whole_seconds(c.opened, c.closed) for c in members if c.status == "resolved"]
        closed = [c for c in members if c.status in ("resolved", "wont_fix")]
        in_sla = [c for c in closed if c.status == "resolved" and c.closed <= c.due]
        result[key] = {
            "opened": len(members),
            "open": sum(c.status in ("new", "contacted") for c in members),
            "overdue": sum(c.status in ("new", "contacted") and c.due < NOW for c in members),
            "contact": statistics.median(contact) if contact else None,
            "resolution": statistics.median(resolution) if resolution else None,
            "share": len(in_sla) / len(closed) if closed else None,
        }
    return result


def plain(row: FollowUpFigures) -> dict:
    return {
        "opened": row.opened,
        "open": row.open,
        "overdue": row.overdue,
        # Exactly, not approximately: both databases count whole seconds.
        "contact": row.median_seconds_to_first_contact,
        "resolution": row.median_seconds_to_resolution,
        "share": row.sla_share,
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_figures_are_those_of_the_follow_ups_counted_one_by_one(runtime, seed):
    cases = random_cases(random.Random(seed), 80)
    add(runtime, cases)
    (want_total,) = expected(cases, ()).values()
    for by in [("team",), ("team", "owner"), ()]:
        with runtime.db.session() as session:
            rows = figures(session, by, visible=ADMIN, now=NOW, since=SINCE)
            together, whole = with_total(session, by, visible=ADMIN, now=NOW, since=SINCE)
        assert {tuple(row.group.values()): plain(row) for row in rows} == expected(cases, by)
        assert together == rows
        assert plain(whole) == want_total, by


# -- the CLI ---------------------------------------------------------------------------------


def _pinned(settings):
    runtime = runtime_from_settings(settings)
    runtime.now = lambda: NOW
    return runtime


@pytest.fixture
def cli(seeded, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", seeded.settings.database_url)
    monkeypatch.setenv("REPORT_TIME_ZONE", "UTC")
    monkeypatch.setattr(cli_report, "runtime_from_settings", _pinned)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, ["report", "follow-ups", *args])

    return invoke


def test_the_command_s_table_by_team(cli):
    since = SINCE.date().isoformat()
    result = cli("--by", "team", "--since", since)
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert lines[0] == ["team", "opened", "open", "overdue", "h", "to", "contact", "h", "to",
                        "resolve", "in", "SLA"]  # fmt: skip
    assert lines[2] == ["north", "6", "3", "2", "3.0", "41.0", "33%", "of", "3"]
    assert lines[3] == ["south", "2", "1", "0", "24.0", "24.0", "100%", "of", "1"]
    assert lines[4] == ["unattributed", "1", "1", "1", "-", "-", "-"]
    assert lines[6] == ["total", "9", "5", "3", "4.0", "24.0", "50%", "of", "4"]


def test_the_command_without_groups_and_without_a_range(cli):
    result = cli()
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert lines[2] == ["10", "6", "4", "4.0", "24.0", "50%", "of", "4"]  # west's too


def test_the_command_as_json_and_csv(cli):
    as_json = cli("--by", "owner", "--by", "team", "--format", "json", "--until", "2026-11-01")
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.output)
    assert [(row["owner"], row["team"], row["overdue"]) for row in body["rows"]] == [
        ("wes", "west", 1)
    ]
    assert body["total"]["opened"] == 1 and "owner" not in body["total"]
    as_csv = cli("--by", "owner", "--format", "csv", "--since", "2026-11-01")
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [(r["owner"], r["opened"], r["median_hours_to_first_contact"]) for r in parsed] == [
        ("nina", "6", "3.0"), ("sam", "1", "24.0"), ("unassigned", "2", ""),
    ]  # fmt: skip


def test_the_command_when_nothing_matches(cli):
    result = cli("--by", "team", "--since", "2026-12-02")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no follow-ups match"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "agent"), "'agent' is not one of 'team', 'owner', 'survey'"),
        (("--by", "team", "--by", "team"), "each group at most once"),
        (("--since", "yesterday"), "'--since'"),
        (("--since", "2026-11-02", "--until", "2026-11-01"), "must be before until"),
    ],
)
def test_the_command_refuses_bad_options(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_the_survey_report_s_options_do_not_go_before_follow_ups(seeded, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", seeded.settings.database_url)
    runner = CliRunner()
    misplaced = runner.invoke(main, ["report", "--by", "team", "follow-ups"])
    assert misplaced.exit_code == 2
    assert "--by belongs to the survey report" in misplaced.output
    # The survey report itself runs as before, and names the subcommand in its help.
    assert runner.invoke(main, ["report", "--by", "team"]).exit_code == 0
    help_text = runner.invoke(main, ["report", "--help"]).output
    assert "follow-ups" in help_text
