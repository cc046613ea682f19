"""Surveys kept in the database: created, copied, edited, retired and restored by admins
(the dashboard's survey editor) or imported from TOML files (`aftercall surveys import`),
each change a new revision with who made it, when, and what changed.

A survey belongs to one source. A file in SURVEYS_DIR always wins: its survey is
read-only here (it can be copied under a new name), and a name a file defines can be
neither created nor imported. If a file later appears for a name the database holds,
the file's definition is what calls use, and `aftercall doctor` warns.

A database survey's definition is a `SurveyVersion`, frozen exactly as a file's is
(core.survey_versions): requests pin the version they were accepted under and answers
point at it, so an edit or a retirement never changes a call in progress or the meaning
of a stored answer. Concurrent editors are kept apart by the revision: every change is
one guarded UPDATE (`... WHERE name = :name AND revision = :expected`), and whoever
saved second gets `SurveyConflict` with the state the first left.

The functions take plain values and a SQLAlchemy session; the caller commits. A refused
change writes nothing. What this module does not check: phrase overrides against the
built-in phrases (`ivr.prompts.check_phrases`, ivr's own rule); callers run it before
they create or save, as `aftercall surveys check` does for files.

`CombinedSurveyCatalog` is what a running process looks surveys up in: the files, plus
the database surveys not retired, re-read when its copy is older than a couple of
seconds (SURVEY_REFRESH_SECONDS) or at once after `refresh()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import tomli_w
from sqlalchemy import false, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from core.db import Database, utcnow
from core.models import SurveyAuditEntry, SurveyHead, SurveyVersion
from core.survey import SurveyCatalog, SurveyDefinition, SurveyError, UnknownSurvey
from core.survey_versions import definition_of, known_definition, version_for

log = logging.getLogger(__name__)

# The actions that make a survey (the others change one that exists).
CREATE_ACTIONS = ("created", "copied", "imported")
# As long as the columns that keep them (core.models.SurveyHead, SurveyAuditEntry).
MAX_ACTOR_LENGTH = 120
MAX_SUMMARY_LENGTH = 500
# A summary names at most this many fields per kind of change, then "and N more".
SUMMARY_ITEMS = 8
# How long a process's copy of the database surveys is used before it is read again.
DEFAULT_MAX_AGE_SECONDS = 2.0


@dataclass(frozen=True)
class ManagedSurvey:
    """A database survey as it stands: its revision, the version it asks, and who
    changed it last."""

    name: str
    revision: int
    version: int
    version_id: int
    definition: SurveyDefinition
    retired_at: datetime | None
    updated_by: str
    updated_at: datetime

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


@dataclass(frozen=True)
class SurveyChange:
    """One entry of a database survey's history."""

    survey_name: str
    revision: int
    action: str
    by: str
    at: datetime
    version: int
    summary: str


class SurveyExists(ValueError):
    """The database already holds a survey of that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a survey named {name!r} already exists; choose another name")


class ManagedByFile(ValueError):
    """A file in SURVEYS_DIR defines that name: the file wins, so the database may not."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"{name!r} is defined by the file {name}.toml in SURVEYS_DIR and is read-only "
            "here; copy it under another name"
        )


class SurveyConflict(Exception):
    """Someone else saved the survey since the revision this change started from.
    `current` says who, which revision and when; nothing of this change was written."""

    def __init__(self, name: str, current: ManagedSurvey) -> None:
        self.name = name
        self.current = current
        super().__init__(
            f"{name!r} was changed by {current.updated_by} at "
            f"{current.updated_at:%Y-%m-%d %H:%M:%S} UTC (now revision {current.revision}); "
            "load it again and redo your change"
        )


class _Raced(Exception):
    """The guarded UPDATE matched no row: another writer got there first."""


# -- reading ------------------------------------------------------------------------


def managed_surveys(session: Session) -> list[ManagedSurvey]:
    """Every database survey, retired ones included, by name."""
    rows = session.execute(_HEADS.order_by(SurveyHead.name)).all()
    return [_managed(head, version) for head, version in rows]


def managed_survey(session: Session, name: str) -> ManagedSurvey | None:
    found = _current(session, name)
    return None if found is None else _managed(*found)


def survey_history(session: Session, name: str) -> list[SurveyChange]:
    """What was done to the survey `name`, newest first (empty for an unknown name)."""
    rows = session.execute(
        select(SurveyAuditEntry, SurveyVersion.version)
        .join(SurveyVersion, SurveyVersion.id == SurveyAuditEntry.version_id)
        .where(SurveyAuditEntry.survey_name == name)
        .order_by(SurveyAuditEntry.revision.desc())
    ).all()
    return [
        SurveyChange(
            survey_name=entry.survey_name,
            revision=entry.revision,
            action=entry.action,
            by=entry.changed_by,
            at=entry.changed_at,
            version=version,
            summary=entry.summary,
        )
        for entry, version in rows
    ]


_HEADS = select(SurveyHead, SurveyVersion).join(
    SurveyVersion, SurveyVersion.id == SurveyHead.current_version_id
)


def _current(
    session: Session, name: str, *, lock: bool = False
) -> tuple[SurveyHead, SurveyVersion] | None:
    # populate_existing: after another writer's commit the session's copy may be stale,
    # and a conflict must report what is in the database now.
    if lock:
        # PostgreSQL: a second writer of this survey waits here for the first one's
        # commit; the read below, a statement of its own, then sees what it left (locked
        # together with the join, the version row would be read from before the wait and
        # the survey found missing). SQLite has no row locks: there _begin_writing has
        # taken the database's write lock already.
        session.execute(select(SurveyHead.name).where(SurveyHead.name == name).with_for_update())
    row = session.execute(
        _HEADS.where(SurveyHead.name == name).execution_options(populate_existing=True)
    ).first()
    return None if row is None else (row[0], row[1])


def _as_written(
    name: str,
    revision: int,
    version: SurveyVersion,
    retired_at: datetime | None,
    by: str,
    now: datetime,
) -> ManagedSurvey:
    """The survey as a change just left it, without reading back what was written."""
    return ManagedSurvey(
        name=name,
        revision=revision,
        version=version.version,
        version_id=version.id,
        definition=definition_of(version),
        retired_at=retired_at,
        updated_by=by,
        updated_at=now,
    )


def _managed(head: SurveyHead, version: SurveyVersion) -> ManagedSurvey:
    return ManagedSurvey(
        name=head.name,
        revision=head.revision,
        version=version.version,
        version_id=version.id,
        definition=definition_of(version),
        retired_at=head.retired_at,
        updated_by=head.updated_by,
        updated_at=head.updated_at,
    )


# -- changing -----------------------------------------------------------------------


def create_survey(
    session: Session,
    definition: SurveyDefinition,
    *,
    by: str,
    file_names: Collection[str],
    action: str = "created",
) -> ManagedSurvey:
    """Keep `definition` in the database as a new survey, revision 1.

    `file_names` are the names files define (`runtime.catalog.file_names()`): those are
    refused (ManagedByFile), as is a name the database already holds (SurveyExists).
    `action` says how it came: "created", "copied" (from another survey) or "imported".
    """
    if action not in CREATE_ACTIONS:
        raise ValueError(f"action: expected one of {', '.join(CREATE_ACTIONS)}, got {action!r}")
    by = _actor(by)
    _check(definition)
    name = definition.name
    if name in file_names:
        raise ManagedByFile(name)
    _begin_writing(session)
    if _current(session, name) is not None:
        raise SurveyExists(name)
    now = utcnow()
    try:
        with _all_or_nothing(session):
            version = version_for(session, definition)
            session.add(
                SurveyHead(
                    name=name,
                    revision=1,
                    current_version_id=version.id,
                    retired_at=None,
                    updated_by=by,
                    updated_at=now,
                )
            )
            session.flush()
            _record(session, name, 1, action, by, now, version.id, _made_summary(definition))
    except IntegrityError:
        # Another writer created it between our check and our insert.
        if _current(session, name) is not None:
            raise SurveyExists(name) from None
        raise
    return _as_written(name, 1, version, None, by, now)


def save_survey(
    session: Session, definition: SurveyDefinition, *, expected_revision: int, by: str
) -> ManagedSurvey:
    """Make `definition` the survey's current one, if it is still at `expected_revision`
    (SurveyConflict if not). An unchanged definition makes no revision: the current
    state is returned. A retired survey stays retired."""
    return _save(session, definition, expected_revision, by, "edited")


def retire_survey(session: Session, name: str, *, expected_revision: int, by: str) -> ManagedSurvey:
    """Take the survey out of service: the catalog no longer lists it, so no new request
    may use it; requests already accepted finish on the version they pinned. Retiring a
    retired survey changes nothing."""
    return _set_retired(session, name, expected_revision, by, retire=True)


def restore_survey(
    session: Session, name: str, *, expected_revision: int, by: str
) -> ManagedSurvey:
    """Put a retired survey back into service (its current version, unchanged)."""
    return _set_retired(session, name, expected_revision, by, retire=False)


def import_survey(
    session: Session, definition: SurveyDefinition, *, by: str, file_names: Collection[str]
) -> tuple[ManagedSurvey, str]:
    """What `aftercall surveys import` does with one file's definition: a new survey, a
    new revision of the database survey of that name, or nothing if it is unchanged;
    each change recorded as "imported". Returns the survey and which of "created",
    "changed", "unchanged" happened."""
    if definition.name in file_names:
        raise ManagedByFile(definition.name)
    found = _current(session, definition.name)
    if found is None:
        created = create_survey(
            session, definition, by=by, file_names=file_names, action="imported"
        )
        return created, "created"
    head, version = found
    if definition.content_sha256() == version.content_sha256:
        return _managed(head, version), "unchanged"
    return _save(session, definition, head.revision, by, "imported"), "changed"


def _save(
    session: Session,
    definition: SurveyDefinition,
    expected_revision: int,
    by: str,
    action: str,
) -> ManagedSurvey:
    by = _actor(by)
    _check(definition)
    name = definition.name
    _begin_writing(session)
    found = _current(session, name, lock=True)
    if found is None:
        raise UnknownSurvey(name)
    head, before = found
    if head.revision != expected_revision:
        raise SurveyConflict(name, _managed(head, before))
    if definition.content_sha256() == before.content_sha256:
        return _managed(head, before)
    retired_at = head.retired_at
    summary = change_summary(definition_of(before).to_dict(), definition.to_dict())
    now = utcnow()
    try:
        with _all_or_nothing(session):
            version = version_for(session, definition)
            _advance(session, name, expected_revision, by, now, current_version_id=version.id)
            _record(session, name, expected_revision + 1, action, by, now, version.id, summary)
    except _Raced:
        raise _conflict(session, name) from None
    except IntegrityError:
        # Two new versions of one survey numbered alike at once: the other writer won.
        conflict = _conflict(session, name)
        if isinstance(conflict, SurveyConflict) and conflict.current.revision != expected_revision:
            raise conflict from None
        raise
    return _as_written(name, expected_revision + 1, version, retired_at, by, now)


def _set_retired(
    session: Session, name: str, expected_revision: int, by: str, *, retire: bool
) -> ManagedSurvey:
    by = _actor(by)
    _begin_writing(session)
    found = _current(session, name, lock=True)
    if found is None:
        raise UnknownSurvey(name)
    head, version = found
    if head.revision != expected_revision:
        raise SurveyConflict(name, _managed(head, version))
    if (head.retired_at is not None) is retire:
        return _managed(head, version)
    now = utcnow()
    retired_at = now if retire else None
    if retire:
        action, summary = "retired", "retired: takes no new requests; those accepted finish"
    else:
        action, summary = "restored", "restored: takes new requests again"
    try:
        with _all_or_nothing(session):
            _advance(session, name, expected_revision, by, now, retired_at=retired_at)
            _record(session, name, expected_revision + 1, action, by, now, version.id, summary)
    except _Raced:
        raise _conflict(session, name) from None
    return _as_written(name, expected_revision + 1, version, retired_at, by, now)


def _advance(
    session: Session, name: str, expected_revision: int, by: str, now: datetime, **values: Any
) -> None:
    """The one guarded write: on PostgreSQL a concurrent writer's UPDATE waits for ours
    to commit, then finds the revision moved on and matches nothing; on SQLite the
    writers are serialised by the database lock taken in _begin_writing."""
    moved = session.execute(
        update(SurveyHead)
        .where(SurveyHead.name == name, SurveyHead.revision == expected_revision)
        .values(revision=expected_revision + 1, updated_by=by, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        raise _Raced()


def _conflict(session: Session, name: str) -> Exception:
    found = _current(session, name)
    if found is None:
        return UnknownSurvey(name)
    return SurveyConflict(name, _managed(*found))


def _record(
    session: Session,
    name: str,
    revision: int,
    action: str,
    by: str,
    now: datetime,
    version_id: int,
    summary: str,
) -> None:
    session.add(
        SurveyAuditEntry(
            survey_name=name,
            revision=revision,
            action=action,
            changed_by=by,
            changed_at=now,
            version_id=version_id,
            summary=summary[:MAX_SUMMARY_LENGTH],
        )
    )
    session.flush()


def _actor(by: str) -> str:
    actor = by.strip() if isinstance(by, str) else ""
    if not actor:
        raise ValueError("by: say who makes the change (a username)")
    if len(actor) > MAX_ACTOR_LENGTH:
        raise ValueError(f"by: at most {MAX_ACTOR_LENGTH} characters")
    return actor


def _check(definition: SurveyDefinition) -> None:
    """SurveyError naming the field, for a definition a survey file could not hold (one
    built in code rather than parsed: a name with capitals, a window past 21:00...)."""
    SurveyDefinition.from_dict(definition.to_dict(), source=f"survey {definition.name}")


def _begin_writing(session: Session) -> None:
    """On SQLite, start the transaction with a write before anything else.

    Python's sqlite3 opens a transaction only before a write statement, so a SAVEPOINT
    issued first (version_for's, ours) would be the outermost transaction and its
    RELEASE would commit on the spot: a later failure, or the CLI's rollback of an
    import that failed on its third file, could no longer undo it. A write that changes
    nothing opens the transaction (and takes SQLite's write lock, so two writers cannot
    both read the same revision). PostgreSQL needs none of this.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(SurveyHead).where(false()).values(revision=SurveyHead.revision),
            execution_options={"synchronize_session": False},
        )


@contextmanager
def _all_or_nothing(session: Session) -> Iterator[None]:
    """A savepoint around one change: refused or raced, it leaves no row behind."""
    try:
        with session.begin_nested():
            yield
    except BaseException:
        # version_for remembers the versions it made in this session; one made inside
        # the rolled-back savepoint no longer exists.
        session.info.pop("survey_versions", None)
        raise


# -- what changed -------------------------------------------------------------------


def change_summary(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """A short description of how `after` differs from `before` (two definitions'
    `to_dict()`): the fields that changed, by their path as error messages name them
    ("questions[1].prompt.es, dialing.calling_hours changed"), questions added or
    removed by key, and whether the questions were reordered."""
    changed: list[str] = []
    added: list[str] = []
    before_questions = {q["key"]: q for q in before.get("questions", [])}
    after_questions = {q["key"]: q for q in after.get("questions", [])}
    for index, question in enumerate(after.get("questions", [])):
        old = before_questions.get(question["key"])
        if old is None:
            added.append(f"questions[{index}] ({question['key']})")
        else:
            changed += _differences(old, question, f"questions[{index}]")
    removed = [f"question {key}" for key in before_questions if key not in after_questions]
    kept_before = [key for key in before_questions if key in after_questions]
    kept_after = [key for key in after_questions if key in before_questions]
    rest_before = {key: value for key, value in before.items() if key != "questions"}
    rest_after = {key: value for key, value in after.items() if key != "questions"}
    changed += _differences(rest_before, rest_after, "")
    parts = [
        f"{_listed(changed)} changed" if changed else "",
        f"{_listed(added)} added" if added else "",
        f"{_listed(removed)} removed" if removed else "",
        "questions reordered" if kept_before != kept_after else "",
    ]
    summary = "; ".join(part for part in parts if part) or "no change"
    if len(summary) > MAX_SUMMARY_LENGTH:
        summary = summary[: MAX_SUMMARY_LENGTH - 3] + "..."
    return summary


def _differences(before: Any, after: Any, path: str) -> list[str]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        found: list[str] = []
        for key in [*before, *(key for key in after if key not in before)]:
            inner = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                found.append(inner)
            else:
                found += _differences(before[key], after[key], inner)
        return found
    return [] if before == after else [path]


def _listed(items: list[str]) -> str:
    if len(items) <= SUMMARY_ITEMS:
        return ", ".join(items)
    return f"{', '.join(items[:SUMMARY_ITEMS])} and {len(items) - SUMMARY_ITEMS} more"


def _made_summary(definition: SurveyDefinition) -> str:
    count = len(definition.questions)
    languages = ", ".join(sorted(definition.languages))
    return f"{count} question{'s' if count != 1 else ''} ({languages})"


# -- TOML ---------------------------------------------------------------------------

# The order a survey file is read in: the survey's own settings, its questions, then
# the tables that tune it (as core/surveys/post-call.toml has them).
_TOML_ORDER = (
    "name", "title", "default_language", "max_tries", "leave_voicemail", "company_name",
    "callback_number", "channel", "questions", "dialing", "sms", "follow_up", "phrases",
)  # fmt: skip


def export_toml(definition: SurveyDefinition) -> str:
    """`definition` as a survey file that `core.survey.load_survey_file` reads back to an
    equal definition (what `aftercall surveys export` writes; `import` reads it)."""
    data = definition.to_dict()
    ordered = {key: data[key] for key in _TOML_ORDER if key in data}
    ordered |= {key: value for key, value in data.items() if key not in ordered}
    # TOML has no null; an unset company name or callback number is simply absent, and
    # no phrase overrides is no [phrases] table.
    kept = {key: value for key, value in ordered.items() if value is not None and value != {}}
    return tomli_w.dumps(kept)


# -- the catalog a process looks surveys up in --------------------------------------


class CombinedSurveyCatalog(SurveyCatalog):
    """The surveys of SURVEYS_DIR and the database surveys not retired, as one catalog.

    The files are read once, at start, as before. The database surveys are read at
    first use and again whenever the copy is older than `max_age` seconds, or at the
    next lookup after `refresh()` (the process that saved a change calls it after its
    commit). A lookup is a clock read and a dict lookup; reading the database is one
    small query of the heads, plus a parse only for a version this process has not met.

    If the database cannot be read (not migrated yet, down), the files still answer
    and the database surveys last read stay as they were; it is tried again after
    `max_age`.
    """

    def __init__(
        self,
        files: SurveyCatalog,
        db: Database,
        *,
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(files.definitions())
        self._files = dict(self._definitions)
        self._db = db
        self._max_age = max_age
        self._clock = clock
        self._stale_at = float("-inf")
        self._stored_names: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._unreadable = False

    def get(self, name: str) -> SurveyDefinition:
        try:
            return self._fresh()[name]
        except KeyError:
            raise UnknownSurvey(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._fresh()

    def names(self) -> list[str]:
        return sorted(self._fresh())

    def definitions(self) -> dict[str, SurveyDefinition]:
        return dict(self._fresh())

    def file_names(self) -> list[str]:
        return sorted(self._files)

    def source_of(self, name: str) -> str:
        if name in self._files:
            return "file"
        self._fresh()
        if name in self._stored_names:
            return "database"
        raise UnknownSurvey(name)

    def refresh(self) -> None:
        self._stale_at = float("-inf")

    def _fresh(self) -> dict[str, SurveyDefinition]:
        """The surveys by name, read again first if the copy is too old. Replaced whole,
        never changed in place: the dict returned stays one consistent snapshot."""
        if self._clock() >= self._stale_at:
            self._read_database()
        return self._definitions

    def _read_database(self) -> None:
        with self._lock:
            if self._clock() < self._stale_at:
                return  # another thread has just read them
            try:
                stored = self._read_heads()
            except SQLAlchemyError as exc:
                if not self._unreadable:
                    log.warning("surveys kept in the database not read: %s", exc)
                self._unreadable = True
                self._stale_at = self._clock() + self._max_age
                return
            self._unreadable = False
            definitions = dict(self._files)
            for name, definition in stored.items():
                # A file of the same name wins (doctor warns about the pair).
                if definition is not None and name not in definitions:
                    definitions[name] = definition
            # Replaced whole, never changed in place: other threads read without a lock.
            self._definitions = definitions
            self._stored_names = frozenset(stored)
            self._stale_at = self._clock() + self._max_age

    def _read_heads(self) -> dict[str, SurveyDefinition | None]:
        """Each database survey's current definition; None for a retired one."""
        with self._db.engine.connect() as connection:
            rows = connection.execute(
                select(
                    SurveyHead.name,
                    SurveyHead.retired_at,
                    SurveyVersion.id,
                    SurveyVersion.content_sha256,
                ).join(SurveyVersion, SurveyVersion.id == SurveyHead.current_version_id)
            ).all()
            stored: dict[str, SurveyDefinition | None] = {}
            unparsed: dict[int, str] = {}
            for name, retired_at, version_id, digest in rows:
                if retired_at is not None:
                    stored[name] = None
                    continue
                definition = known_definition(version_id, digest)
                if definition is None:
                    unparsed[version_id] = name
                else:
                    stored[name] = definition
            if unparsed:
                with Session(bind=connection) as session:
                    for version in session.scalars(
                        select(SurveyVersion).where(SurveyVersion.id.in_(unparsed))
                    ):
                        try:
                            stored[unparsed[version.id]] = definition_of(version)
                        except SurveyError as exc:
                            # Saved by a release that accepted what this one does not.
                            log.error("database survey %s left out: %s", version.survey_name, exc)
        return stored
