"""`aftercall user`: create, list, set-role, delete, unlock, against each backend."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from aftercall.cli import main
from core.models import User
from core.users import authenticate

PASSWORD = "correct horse battery"


@pytest.fixture
def cli(runtime, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)

    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(main, ["user", *args], input=input)

    return run


def test_create_from_stdin_then_sign_in(cli, runtime):
    result = cli("create", "sue", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    with runtime.db.session() as session:
        user = session.scalars(select(User)).one()
        # The least privileged role that still sees the reports, unless asked otherwise.
        assert (user.username, user.role) == ("sue", "analyst")
        assert user.password_hash.startswith("scrypt:")
        assert authenticate(session, "sue", PASSWORD) is not None


def test_a_mistyped_confirmation_is_asked_again(cli):
    result = cli("create", "ann", input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output


def test_create_with_the_hidden_prompt_asks_twice(cli, runtime):
    result = cli("create", "ann", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation" in result.output
    assert PASSWORD not in result.output
    with runtime.db.session() as session:
        assert session.scalars(select(User.role)).one() == "admin"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("create", "sue", "--password-stdin"), "too short\n", "at least 12"),
        (("create", "two words", "--password-stdin"), PASSWORD + "\n", "username"),
        (("create", "sue", "--role", "root", "--password-stdin"), PASSWORD + "\n", "root"),
        (("delete", "nobody"), None, "no user named"),
        (("unlock", "nobody"), None, "no user named"),
        (("set-role", "nobody", "supervisor"), None, "no user named"),
        (("set-role", "nobody", "root"), None, "root"),
    ],
)
def test_mistakes_exit_non_zero_and_say_why(cli, args, stdin, message):
    result = cli(*args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output


def test_duplicate_list_and_delete(cli):
    assert cli("list").output.startswith("no users")
    assert cli("create", "sue", "--password-stdin", input=PASSWORD).exit_code == 0
    again = cli("create", "sue", "--password-stdin", input=PASSWORD)
    assert again.exit_code != 0 and "already exists" in again.output
    cli("create", "ann", "--role", "admin", "--password-stdin", input=PASSWORD)
    listed = [line.split() for line in cli("list").output.splitlines()]
    assert [(line[0], line[1]) for line in listed] == [("ann", "admin"), ("sue", "analyst")]
    assert cli("delete", "sue").exit_code == 0
    assert [line.split()[0] for line in cli("list").output.splitlines()] == ["ann"]
    assert cli("unlock", "ann").exit_code == 0


def test_set_role(cli, runtime):
    cli("create", "sue", "--password-stdin", input=PASSWORD)
    result = cli("set-role", "sue", "supervisor")
    assert result.exit_code == 0, result.output
    assert "sue is now supervisor" in result.output
    listed = [line.split() for line in cli("list").output.splitlines()]
    assert [(line[0], line[1]) for line in listed] == [("sue", "supervisor")]
    assert cli("set-role", "sue", "analyst").exit_code == 0
    with runtime.db.session() as session:
        assert session.scalars(select(User.role)).one() == "analyst"
