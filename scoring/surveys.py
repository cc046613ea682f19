"""What the dashboard shows about surveys: the catalog, each survey's stored versions,
and how many requests and answers point at each version.

Counts are made by the database (one grouped query per table), never by loading rows.
It only reads: a survey file that no request has used yet has no version row, and
showing the page does not make one (intake or the first call does, see
core.survey_versions). Surveys removed from the folder still have their versions,
and answers pointing at them, so they are listed too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.models import Answer, SurveyRequest, SurveyVersion
from core.survey import SurveyCatalog, SurveyDefinition


@dataclass(frozen=True)
class StoredVersion:
    id: int
    version: int
    content_sha256: str
    created_at: datetime
    source_path: str
    requests: int
    test_calls: int  # of the requests, those placed as test calls
    answers: int
    current: bool  # the survey file has exactly this content now
    languages: tuple[str, ...]

    @property
    def short_hash(self) -> str:
        return self.content_sha256[:12]


@dataclass(frozen=True)
class SurveyEntry:
    name: str
    definition: SurveyDefinition | None  # None: no longer in the survey folder
    versions: tuple[StoredVersion, ...]  # newest first

    @property
    def current_version(self) -> StoredVersion | None:
        return next((v for v in self.versions if v.current), None)


def survey_entries(session: Session, catalog: SurveyCatalog) -> list[SurveyEntry]:
    """Every survey in the catalog, then every survey that only has stored versions."""
    requests = (
        select(
            SurveyRequest.survey_version_id.label("version_id"),
            func.count().label("requests"),
            func.sum(case((SurveyRequest.is_test, 1), else_=0)).label("test_calls"),
        )
        .where(SurveyRequest.survey_version_id.is_not(None))
        .group_by(SurveyRequest.survey_version_id)
        .subquery()
    )  # fmt: skip
    answers = (
        select(Answer.survey_version_id.label("version_id"), func.count().label("answers"))
        .group_by(Answer.survey_version_id)
        .subquery()
    )
    rows = session.execute(
        select(
            SurveyVersion.id,
            SurveyVersion.survey_name,
            SurveyVersion.version,
            SurveyVersion.content_sha256,
            SurveyVersion.created_at,
            SurveyVersion.source_path,
            SurveyVersion.definition,
            func.coalesce(requests.c.requests, 0),
            func.coalesce(requests.c.test_calls, 0),
            func.coalesce(answers.c.answers, 0),
        )
        .outerjoin(requests, requests.c.version_id == SurveyVersion.id)
        .outerjoin(answers, answers.c.version_id == SurveyVersion.id)
        .order_by(SurveyVersion.survey_name, SurveyVersion.version.desc())
    ).all()

    # One snapshot: a survey retired between a names() and a get() would be missing.
    current = catalog.definitions()
    current_hash = {name: definition.content_sha256() for name, definition in current.items()}
    versions: dict[str, list[StoredVersion]] = {}
    for id_, name, number, digest, created, source, frozen, n_requests, n_tests, n_answers in rows:
        versions.setdefault(name, []).append(
            StoredVersion(
                id=id_,
                version=number,
                content_sha256=digest,
                created_at=created,
                source_path=source,
                requests=int(n_requests),
                test_calls=int(n_tests),
                answers=int(n_answers),
                current=current_hash.get(name) == digest,
                languages=_languages(frozen),
            )
        )
    entries = [
        SurveyEntry(name, definition, tuple(versions.get(name, ())))
        for name, definition in sorted(current.items())
    ]
    entries += [
        SurveyEntry(name, None, tuple(stored))
        for name, stored in sorted(versions.items())
        if name not in current_hash
    ]
    return entries


def stored_version(session: Session, survey: str, version: int) -> SurveyVersion | None:
    return session.scalar(
        select(SurveyVersion).where(
            SurveyVersion.survey_name == survey, SurveyVersion.version == version
        )
    )


def _languages(frozen: dict) -> tuple[str, ...]:
    # Every question of a stored definition has the same languages (the loader checks).
    questions = frozen.get("questions") or [{}]
    return tuple(sorted(questions[0].get("prompt", {})))
