"""The people who sign in to the dashboard: creating them, checking passwords, lockout.

Passwords are kept only as werkzeug scrypt hashes. Signing in tells the caller nothing
about why it failed (unknown name, wrong password, locked account all look the same), so
the login form cannot be used to find out which usernames exist. After
`MAX_FAILED_LOGINS` wrong passwords in a row an account is locked for `LOCKOUT`, which
turns a password-guessing run into a few guesses an hour.

Roles decide what a user sees of the customers (`contact_for_role`):

    admin       everything a supervisor sees; will also manage surveys and users
    supervisor  follows detractors up: full phone numbers, recordings, transcripts
    analyst     scores only: masked numbers, no recordings, digits in comments hidden

A role is read from the database on every dashboard request, so `set_role` takes effect
on a signed-in user's next click, not at their next sign-in.

This module knows nothing of Flask or click: the dashboard and `aftercall user` call it
with a session and plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from core.db import utcnow
from core.masking import Contact
from core.models import USER_ROLES, User, UserTeam

# Most privileged first, as the CHECK constraint on users.role lists them.
ROLES = USER_ROLES
# The least a dashboard user can usefully see; anyone who calls customers back is made
# a supervisor on purpose.
DEFAULT_ROLE = "analyst"
_CONTACT = {"admin": Contact.FULL, "supervisor": Contact.FULL, "analyst": Contact.MASKED}
MIN_PASSWORD_LENGTH = 12
# werkzeug hashes whatever it is given; a cap keeps one request from costing seconds.
MAX_PASSWORD_LENGTH = 1024
MAX_USERNAME_LENGTH = 100
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
PASSWORD_METHOD = "scrypt"


class UserError(ValueError):
    """A user cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class SignedIn:
    """Who signed in; a plain value, so callers never hold a session-bound User."""

    id: int
    username: str
    role: str

    @property
    def contact(self) -> Contact:
        return contact_for_role(self.role)


def contact_for_role(role: str) -> Contact:
    """What a role may see of customers; a role this code does not know sees least."""
    return _CONTACT.get(role, Contact.MASKED)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role: expected one of {', '.join(ROLES)}")
    return role


def check_username(username: str) -> str:
    name = username.strip()
    if not name:
        raise UserError("username: must not be empty")
    if len(name) > MAX_USERNAME_LENGTH:
        raise UserError(f"username: at most {MAX_USERNAME_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        raise UserError("username: no spaces or control characters")
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"password: at most {MAX_PASSWORD_LENGTH} characters")


def create_user(session: Session, username: str, password: str, role: str = DEFAULT_ROLE) -> User:
    """Add a user; UserError if the name is taken or the password or role is not allowed."""
    name = check_username(username)
    check_password(password)
    check_role(role)
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise UserError(f"a user named {name!r} already exists")
    user = User(
        username=name,
        password_hash=generate_password_hash(password, method=PASSWORD_METHOD),
        role=role,
        failed_logins=0,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # created concurrently between the check and the insert
        raise UserError(f"a user named {name!r} already exists") from None
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def delete_user(session: Session, username: str) -> bool:
    """Remove a user, and the teams they led; False if there was none. Their open
    dashboard sessions end with it. Follow-ups they own keep their name (the history
    says who worked them); an admin reassigns them."""
    user_id = session.scalar(select(User.id).where(User.username == username.strip()))
    if user_id is None:
        return False
    session.execute(delete(UserTeam).where(UserTeam.user_id == user_id))
    result = session.execute(delete(User).where(User.id == user_id))
    return bool(result.rowcount)


def set_role(session: Session, username: str, role: str) -> bool:
    """Give a user another role; False if there is no such user, UserError for a role
    that does not exist. Their open dashboard sessions see with the new role at once."""
    check_role(role)
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        return False
    user.role = role
    return True


def unlock_user(session: Session, username: str) -> bool:
    """Lift a lockout early (an operator vouched for the person); False if no such user."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        return False
    user.failed_logins = 0
    user.locked_until = None
    return True


@cache
def _decoy_hash() -> str:
    return generate_password_hash("not a real password", method=PASSWORD_METHOD)


def authenticate(
    session: Session, username: str, password: str, now: datetime | None = None
) -> SignedIn | None:
    """The user if the password is right and the account not locked, else None.

    Every failure costs one password hash, so response times do not tell an unknown
    name from a wrong password either. The row is locked for the update (PostgreSQL), so
    parallel guesses cannot slip past the failure count.
    """
    now = now or utcnow()
    user = None
    try:
        name = check_username(username)
    except UserError:  # nothing create_user accepts, so nobody to look up (NUL bytes and all)
        name = None
    if name is not None and len(password) <= MAX_PASSWORD_LENGTH:
        user = session.scalar(select(User).where(User.username == name).with_for_update())
    if user is None:
        check_password_hash(_decoy_hash(), password[:MAX_PASSWORD_LENGTH])
        return None
    if user.locked_until is not None and user.locked_until > now:
        # No password check while locked: a right guess during the lockout must not be
        # distinguishable from a wrong one.
        check_password_hash(_decoy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        return None
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return SignedIn(id=user.id, username=user.username, role=user.role)


def signed_in_user(session: Session, user_id: int) -> SignedIn | None:
    """The user a dashboard session belongs to, or None once they have been deleted."""
    row = session.execute(
        select(User.id, User.username, User.role).where(User.id == user_id)
    ).first()
    return SignedIn(id=row.id, username=row.username, role=row.role) if row else None
