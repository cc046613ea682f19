"""`aftercall user`: the people who may sign in to the dashboard.

Roles (core.users): admin, supervisor (full phone numbers and recordings) and analyst
(masked numbers, no recordings), the default.

Teams (`aftercall user teams`): the teams a supervisor leads, whose follow-ups they see
and act on in the dashboard (scoring.follow_ups.visible). An admin sees every team's
without any; an analyst none, whatever teams are set.

Passwords come from a hidden prompt (asked twice) or, for scripts, from standard input
with `--password-stdin`; never from an option, which would land in shell history and
the process list.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from aftercall.cli.context import Context
from core.db import one_off_session
from core.models import User, UserTeam
from core.users import (
    DEFAULT_ROLE,
    ROLES,
    UserError,
    create_user,
    delete_user,
    list_users,
    set_role,
    unlock_user,
)
from scoring.follow_ups import set_teams, teams_led

# As long as a team may be in a survey request (core.models.SurveyRequest.team).
MAX_TEAM_LENGTH = 200


def register_commands(group: click.Group) -> None:
    group.add_command(user)


@contextmanager
def _session() -> Iterator[Session]:
    settings = click.get_current_context().ensure_object(Context).settings
    with one_off_session(settings.database_url) as session:
        yield session


@click.group()
def user() -> None:
    """Dashboard users (admins, supervisors, analysts)."""


@user.command("create")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=DEFAULT_ROLE,
    show_default=True,
    help="supervisor or admin to see full phone numbers and recordings.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_create(username: str, role: str, password_stdin: bool) -> None:
    """Create a user who can sign in at /dashboard."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with _session() as session:
            created = create_user(session, username, password, role)
            name = created.username
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {role} {name}")


@user.command("list")
def user_list() -> None:
    """List users, their role, last sign-in, whether they are locked out and the teams
    they lead."""
    with _session() as session:
        users = list_users(session)
        teams: dict[int, list[str]] = {}
        for user_id, team in session.execute(
            select(UserTeam.user_id, UserTeam.team).order_by(UserTeam.team)
        ):
            teams.setdefault(user_id, []).append(team)
    if not users:
        click.echo("no users (create one: aftercall user create NAME)")
        return
    for entry in users:
        last = (
            entry.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if entry.last_login_at else "never"
        )
        locked = (
            f"  locked until {entry.locked_until:%Y-%m-%d %H:%M UTC}" if entry.locked_until else ""
        )
        led = f"  leads {', '.join(teams[entry.id])}" if entry.id in teams else ""
        click.echo(f"{entry.username:<24} {entry.role:<10} last sign-in {last}{locked}{led}")


@user.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def user_set_role(username: str, role: str) -> None:
    """Change a user's role; it applies from their next page, no new sign-in needed."""
    with _session() as session:
        found = set_role(session, username, role)
    if not found:
        raise click.ClickException(f"no user named {username!r}")
    click.echo(f"{username} is now {role}")


@user.command("delete")
@click.argument("username")
def user_delete(username: str) -> None:
    """Delete a user; their open dashboard sessions stop working."""
    with _session() as session:
        user_id = session.scalar(select(User.id).where(User.username == username.strip()))
        if user_id is not None:
            # The teams they led go with them (user_teams refers to the user's row).
            set_teams(session, user_id, [])
        deleted = delete_user(session, username)
    if not deleted:
        raise click.ClickException(f"no user named {username!r}")
    click.echo(f"deleted {username}")


@user.command("unlock")
@click.argument("username")
def user_unlock(username: str) -> None:
    """Lift a lockout after too many wrong passwords, before it runs out."""
    with _session() as session:
        found = unlock_user(session, username)
    if not found:
        raise click.ClickException(f"no user named {username!r}")
    click.echo(f"unlocked {username}")


@user.command("teams")
@click.argument("username")
@click.argument("team_names", metavar="[TEAM]...", nargs=-1)
@click.option("--clear", is_flag=True, help="Lead no team any more.")
def user_teams(username: str, team_names: tuple[str, ...], clear: bool) -> None:
    """Set the teams a supervisor leads (their follow-ups are theirs to see and act on),
    replacing those they led; with no TEAM, show them."""
    if clear and team_names:
        raise click.UsageError("give teams or --clear, not both")
    teams = sorted({name.strip() for name in team_names if name.strip()})
    if team_names and not teams:
        raise click.UsageError("a team name must not be blank")
    if any(len(team) > MAX_TEAM_LENGTH for team in teams):
        raise click.UsageError(f"a team name is at most {MAX_TEAM_LENGTH} characters")
    with _session() as session:
        found = session.execute(
            select(User.id, User.role).where(User.username == username.strip())
        ).first()
        if found is None:
            raise click.ClickException(f"no user named {username!r}")
        if teams or clear:
            set_teams(session, found.id, teams)
            led = teams
        else:
            led = sorted(teams_led(session, found.id))
    click.echo(f"{username} leads {', '.join(led)}" if led else f"{username} leads no team")
    if led and found.role != "supervisor":
        # Not an error: the teams are kept for when the role changes.
        seen = "every team's follow-ups anyway" if found.role == "admin" else "no follow-ups"
        article = "an" if found.role[:1] in "aeiou" else "a"
        click.echo(f"note: {username} is {article} {found.role}, who sees {seen}", err=True)
