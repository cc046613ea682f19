"""core.users without Flask: creating users, passwords, the lockout rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.masking import Contact
from core.models import User
from core.users import (
    LOCKOUT,
    MAX_FAILED_LOGINS,
    UserError,
    authenticate,
    create_user,
    set_role,
    signed_in_user,
    unlock_user,
)

PASSWORD = "a long enough passphrase"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("username", "password", "role", "message"),
    [
        ("", PASSWORD, "supervisor", "username"),
        ("   ", PASSWORD, "supervisor", "username"),
        ("two words", PASSWORD, "supervisor", "username"),
        ("x" * 101, PASSWORD, "supervisor", "username"),
        ("sue", "short", "supervisor", "password"),
        ("sue", "eleven char", "supervisor", "password"),
        ("sue", PASSWORD, "root", "role"),
    ],
)
def test_create_user_refuses(runtime, username, password, role, message):
    with runtime.db.session() as session, pytest.raises(UserError, match=message):
        create_user(session, username, password, role)


def test_password_is_stored_as_a_scrypt_hash_only(runtime):
    with runtime.db.session() as session:
        create_user(session, "sue", PASSWORD, "admin")
    with runtime.db.session() as session:
        user = session.scalars(select(User)).one()
        assert user.password_hash.startswith("scrypt:")
        assert PASSWORD not in user.password_hash
        assert user.role == "admin"
        with pytest.raises(UserError, match="already exists"):
            create_user(session, "sue", PASSWORD)


def test_lockout_counts_consecutive_failures_and_expires(runtime):
    with runtime.db.session() as session:
        create_user(session, "sue", PASSWORD)
    for attempt in range(MAX_FAILED_LOGINS):
        with runtime.db.session() as session:
            assert authenticate(session, "sue", f"wrong {attempt}", NOW) is None
    during = NOW + LOCKOUT - timedelta(seconds=1)
    with runtime.db.session() as session:
        assert authenticate(session, "sue", PASSWORD, during) is None
    with runtime.db.session() as session:
        signed = authenticate(session, "sue", PASSWORD, NOW + LOCKOUT)
    assert signed is not None and signed.username == "sue"


def test_a_success_resets_the_count(runtime):
    with runtime.db.session() as session:
        create_user(session, "sue", PASSWORD)
    for _ in range(2):
        for _ in range(MAX_FAILED_LOGINS - 1):
            with runtime.db.session() as session:
                authenticate(session, "sue", "wrong", NOW)
        with runtime.db.session() as session:
            assert authenticate(session, "sue", PASSWORD, NOW) is not None


def test_unlock(runtime):
    with runtime.db.session() as session:
        create_user(session, "sue", PASSWORD)
    for _ in range(MAX_FAILED_LOGINS):
        with runtime.db.session() as session:
            authenticate(session, "sue", "wrong", NOW)
    with runtime.db.session() as session:
        assert unlock_user(session, "sue")
        assert not unlock_user(session, "nobody")
    with runtime.db.session() as session:
        assert authenticate(session, "sue", PASSWORD, NOW) is not None


@pytest.mark.parametrize("username", ["", "nobody", "x" * 5000, "sue\x00"])
def test_unknown_or_odd_usernames_just_fail(runtime, username):
    with runtime.db.session() as session:
        assert authenticate(session, username, PASSWORD, NOW) is None


def test_new_users_are_analysts_unless_asked(runtime):
    with runtime.db.session() as session:
        create_user(session, "ann", PASSWORD)
        create_user(session, "sue", PASSWORD, "supervisor")
    with runtime.db.session() as session:
        ann = authenticate(session, "ann", PASSWORD, NOW)
        sue = authenticate(session, "sue", PASSWORD, NOW)
    assert (ann.role, ann.contact) == ("analyst", Contact.MASKED)
    assert (sue.role, sue.contact) == ("supervisor", Contact.FULL)


def test_set_role_is_seen_by_the_signed_in_user_at_once(runtime):
    with runtime.db.session() as session:
        user_id = create_user(session, "sue", PASSWORD, "supervisor").id
    with runtime.db.session() as session:
        assert set_role(session, " sue ", "analyst")
        assert not set_role(session, "nobody", "analyst")
        with pytest.raises(UserError, match="role"):
            set_role(session, "sue", "viewer")
    with runtime.db.session() as session:
        assert signed_in_user(session, user_id).contact is Contact.MASKED


def test_the_database_refuses_a_role_that_does_not_exist(runtime):
    with runtime.db.session() as session:
        create_user(session, "sue", PASSWORD)
    with pytest.raises(IntegrityError), runtime.db.session() as session:
        session.scalars(select(User)).one().role = "root"
