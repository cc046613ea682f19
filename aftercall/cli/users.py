"""`aftercall user`: the people who may sign in to the dashboard.

Roles (core.users): admin, supervisor (full phone numbers and recordings) and analyst
(masked numbers, no recordings), the default.

Passwords come from a hidden prompt (asked twice) or, for scripts, from standard input
with `--password-stdin`; never from an option, which would land in shell history and
the process list.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from aftercall.cli.context import Context
from core.db import one_off_session
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
    """List users, their role, last sign-in and whether they are locked out."""
    with _session() as session:
        users = list_users(session)
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
        click.echo(f"{entry.username:<24} {entry.role:<10} last sign-in {last}{locked}")


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
