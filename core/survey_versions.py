"""Freezing survey definitions into numbered versions in the database.

Whoever first needs a definition in the database (intake pinning a request, a call
starting) calls `version_for()`; it returns the row for this exact content, making a new
version only when the file changed. Two processes racing to make the same version end
up with one row: the loser's insert hits the unique constraint and it reads the winner's.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import SurveyVersion
from core.survey import SurveyDefinition


def version_for(
    session: Session, definition: SurveyDefinition, source_path: str = ""
) -> SurveyVersion:
    digest = definition.content_sha256()
    # Within one unit of work (a batch of intake, say) the answer cannot change.
    cache = session.info.setdefault("survey_versions", {})
    if (definition.name, digest) in cache:
        return cache[definition.name, digest]
    existing = _find(session, definition.name, digest)
    if existing is not None:
        cache[definition.name, digest] = existing
        return existing
    latest = session.scalar(
        select(func.max(SurveyVersion.version)).where(SurveyVersion.survey_name == definition.name)
    )
    row = SurveyVersion(
        survey_name=definition.name,
        version=(latest or 0) + 1,
        content_sha256=digest,
        definition=definition.to_dict(),
        source_path=source_path,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        row = _find(session, definition.name, digest)
        if row is None:
            raise
    cache[definition.name, digest] = row
    return row


def _find(session: Session, name: str, digest: str) -> SurveyVersion | None:
    return session.scalar(
        select(SurveyVersion).where(
            SurveyVersion.survey_name == name, SurveyVersion.content_sha256 == digest
        )
    )


# Parsed definitions by (version id, the first DIGEST_PREFIX characters of the content
# digest). The digest is part of the key so that a version id meaning other content
# (another database in the same process, a test's emptied tables) can never be served
# from here; 16 hex digits (64 bits) are as good as the whole for that, and short enough
# for the survey webhooks' URLs to carry (ivr.calls.LiveCall.ref).
DIGEST_PREFIX = 16
_DEFINITIONS: dict[tuple[int, str], SurveyDefinition] = {}


def known_definition(version_id: int, content_sha256: str) -> SurveyDefinition | None:
    """The definition of a version this process has already parsed, without a query.
    `content_sha256` may be the whole digest or its first DIGEST_PREFIX characters."""
    return _DEFINITIONS.get((version_id, content_sha256[:DIGEST_PREFIX]))


def definition_of(version: SurveyVersion) -> SurveyDefinition:
    """The definition a version froze; versions never change, so parsing is cached."""
    cache_key = (version.id, version.content_sha256[:DIGEST_PREFIX])
    definition = _DEFINITIONS.get(cache_key)
    if definition is None:
        definition = SurveyDefinition.from_dict(
            version.definition, source=f"survey {version.survey_name} v{version.version}"
        )
        _DEFINITIONS[cache_key] = definition
    return definition
