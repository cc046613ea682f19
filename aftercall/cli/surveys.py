"""`aftercall surveys`: survey definitions, in files and in the database.

A survey is a TOML file in SURVEYS_DIR or a survey kept in the database (edited in the
dashboard; core.survey_store), never both: a file always wins. `check` validates both
kinds as the web process does at start; `list` says where each survey lives; `export`
writes the database's surveys as files (to review, keep, or move them to SURVEYS_DIR);
`import` reads files into the database, all of them or, on any error, none.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy import make_url, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from aftercall.cli.context import Context
from core.config import Settings
from core.db import one_off_session
from core.models import SurveyVersion
from core.survey import SurveyCatalog, SurveyDefinition, SurveyError, load_survey_file
from core.survey_store import (
    ManagedByFile,
    ManagedSurvey,
    SurveyConflict,
    SurveyExists,
    export_toml,
    import_survey,
    managed_surveys,
    survey_history,
)
from ivr.prompts import check_phrases


def register_commands(group: click.Group) -> None:
    group.add_command(surveys)


@click.group()
def surveys() -> None:
    """Survey definitions: TOML files in SURVEYS_DIR, and surveys kept in the database."""


def _settings() -> Settings:
    return click.get_current_context().ensure_object(Context).settings


class _NoDatabase(Exception):
    """The database cannot be read; the message says why and what to do."""


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """One unit of work, committed if the block succeeds; _NoDatabase if the database is
    missing, unreachable or not migrated (reading nothing, creating no empty file)."""
    url = make_url(settings.database_url)
    database = url.database if url.get_backend_name() == "sqlite" else None
    if database not in (None, "", ":memory:") and not Path(database).exists():
        raise _NoDatabase(f"no database file at {database} (run: aftercall db upgrade)")
    try:
        with one_off_session(settings.database_url) as session:
            yield session
    except SQLAlchemyError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _NoDatabase(
            f"cannot use the database ({first}); is it up, and migrated (aftercall db upgrade)?"
        ) from exc


def _files(settings: Settings) -> SurveyCatalog:
    try:
        return SurveyCatalog.from_directory(settings.surveys_dir)
    except SurveyError as exc:
        raise click.ClickException(f"SURVEYS_DIR: {exc}") from None


@surveys.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def surveys_check(directory: str | None) -> None:
    """Validate every survey file, and (without DIRECTORY) every survey kept in the
    database; exit 1 naming the file or survey and the field of the first error."""

    settings = _settings()
    folder = Path(directory) if directory else settings.surveys_dir
    try:
        catalog = SurveyCatalog.from_directory(folder)
        for name in catalog.names():
            check_phrases(catalog.get(name), f"{name}.toml")
    except SurveyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for name in catalog.names():
        click.echo(f"ok  {name}: {_described(catalog.get(name))}")
    if directory:
        return
    try:
        with _session(settings) as session:
            stored = managed_surveys(session)
    except _NoDatabase as exc:
        click.echo(f"surveys in the database not checked: {exc}", err=True)
        return
    except SurveyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    failed = False
    for survey in stored:
        try:
            check_phrases(survey.definition, f"survey {survey.name} (database)")
        except SurveyError as exc:
            click.echo(f"error: {exc}", err=True)
            failed = True
            continue
        state = ", retired" if survey.retired else ""
        click.echo(
            f"ok  {survey.name}: {_described(survey.definition)} "
            f"[database, revision {survey.revision}{state}]"
        )
        if survey.name in catalog:
            click.echo(
                f"warn  {survey.name}: {survey.name}.toml in SURVEYS_DIR defines it too; "
                "calls use the file's (rename or remove one of them)",
                err=True,
            )
    if failed:
        sys.exit(1)


def _described(definition: SurveyDefinition) -> str:
    languages = ", ".join(sorted(definition.languages))
    return f"{len(definition.questions)} questions ({languages})"


@surveys.command("list")
def surveys_list() -> None:
    """Every survey: where it is defined (file or database), its revision and version,
    and whether it is retired."""

    settings = _settings()
    files = _files(settings)
    stored: list[ManagedSurvey] = []
    versions: dict[str, int] = {}
    try:
        with _session(settings) as session:
            stored = managed_surveys(session)
            versions = _file_versions(session, files)
    except _NoDatabase as exc:
        click.echo(f"surveys in the database not listed: {exc}", err=True)
    rows = []
    for name in files.names():
        version = versions.get(name)
        rows.append((name, "file", "-", f"v{version}" if version else "not stored yet", "active"))
    for survey in stored:
        if survey.retired_at is not None:
            state = f"retired {survey.retired_at:%Y-%m-%d %H:%M} UTC"
        elif survey.name in files:
            state = "ignored: a file of that name wins"
        else:
            state = "active"
        rows.append((survey.name, "database", f"r{survey.revision}", f"v{survey.version}", state))
    if not rows:
        click.echo("no surveys")
        return
    click.echo(f"{'survey':<24} {'source':<9} {'revision':<9} {'version':<14} state")
    for name, source, revision, version, state in sorted(rows):
        click.echo(f"{name:<24} {source:<9} {revision:<9} {version:<14} {state}")


def _file_versions(session: Session, files: SurveyCatalog) -> dict[str, int]:
    """The stored version of each file's content now (none until a request used it)."""
    found = {}
    for name in files.names():
        version = session.scalar(
            select(SurveyVersion.version).where(
                SurveyVersion.survey_name == name,
                SurveyVersion.content_sha256 == files.get(name).content_sha256(),
            )
        )
        if version is not None:
            found[name] = version
    return found


@surveys.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Export only this survey.")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def surveys_export(directory: Path, name: str | None, force: bool) -> None:
    """Write the surveys kept in the database (retired ones too) to DIRECTORY as
    <name>.toml files, which `aftercall surveys import` reads back. Nothing is written
    if a file exists, unless --force."""

    settings = _settings()
    try:
        with _session(settings) as session:
            stored = managed_surveys(session)
    except _NoDatabase as exc:
        raise click.ClickException(str(exc)) from None
    except SurveyError as exc:
        raise click.ClickException(str(exc)) from None
    if name is not None:
        stored = [survey for survey in stored if survey.name == name]
        if not stored:
            if name in _files(settings):
                raise click.ClickException(
                    f"{name!r} is defined by {settings.surveys_dir / (name + '.toml')}, "
                    "a file already; export writes the surveys kept in the database"
                )
            raise click.ClickException(f"no survey named {name!r} in the database")
    if not stored:
        click.echo("no surveys in the database to export")
        return
    targets = [(survey, directory / f"{survey.name}.toml") for survey in stored]
    existing = [str(path) for _, path in targets if path.exists()]
    if existing and not force:
        raise click.ClickException(
            f"{', '.join(existing)} already exist(s); nothing written (--force overwrites)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for survey, path in targets:
        # Written beside, then moved into place: an interrupted export never leaves half
        # a survey file.
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(_exported(survey), encoding="utf-8")
        partial.replace(path)
        state = ", retired" if survey.retired else ""
        click.echo(f"wrote {path} (revision {survey.revision}, version {survey.version}{state})")


def _exported(survey: ManagedSurvey) -> str:
    retired = (
        f"; retired {survey.retired_at:%Y-%m-%d %H:%M} UTC" if survey.retired_at is not None else ""
    )
    return (
        f"# Exported from aftercall's database: revision {survey.revision} (version "
        f"{survey.version}), last changed by {survey.updated_by} at "
        f"{survey.updated_at:%Y-%m-%d %H:%M} UTC{retired}.\n"
        "# `aftercall surveys import` reads it back.\n" + export_toml(survey.definition)
    )


def _login() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


@surveys.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--by",
    default=None,
    help="Who is importing, for each survey's history (default: cli:<your login name>).",
)
def surveys_import(files: tuple[Path, ...], by: str | None) -> None:
    """Keep the surveys of FILE... in the database: a new name is created, a survey the
    database holds gets a new revision if the file changed it. Each file is checked as
    `aftercall surveys check` checks one; a name that a file in SURVEYS_DIR defines is
    refused. Any error, and nothing is imported."""

    settings = _settings()
    file_names = set(_files(settings).file_names())
    errors: list[str] = []
    definitions: list[SurveyDefinition] = []
    seen: dict[str, Path] = {}
    for path in files:
        try:
            definition = load_survey_file(path)
            check_phrases(definition, path.name)
        except SurveyError as exc:
            errors.append(f"{path}: {exc.field_path + ': ' if exc.field_path else ''}{exc.message}")
            continue
        if definition.name in file_names:
            errors.append(
                f"{path}: {definition.name!r} is defined by "
                f"{settings.surveys_dir / (definition.name + '.toml')}, which always wins; "
                "import it under another name (its file name and `name`)"
            )
        elif definition.name in seen:
            errors.append(f"{path}: {definition.name!r} is also in {seen[definition.name]}")
        seen.setdefault(definition.name, path)
        definitions.append(definition)
    if errors:
        for error in errors:
            click.echo(f"error: {error}", err=True)
        click.echo("nothing imported", err=True)
        sys.exit(1)

    actor = by if by is not None else _login()
    done: list[tuple[ManagedSurvey, str, str]] = []
    try:
        with _session(settings) as session:
            for definition in definitions:
                survey, outcome = import_survey(
                    session, definition, by=actor, file_names=file_names
                )
                summary = survey_history(session, survey.name)[0].summary
                done.append((survey, outcome, summary))
    except (_NoDatabase, SurveyConflict, SurveyExists, ManagedByFile, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo("nothing imported", err=True)
        sys.exit(1)
    for survey, outcome, summary in done:
        where = f"revision {survey.revision}, version {survey.version}"
        if outcome == "created":
            click.echo(f"created {survey.name} ({where}): {summary}")
        elif outcome == "changed":
            click.echo(f"imported {survey.name} ({where}): {summary}")
        else:
            click.echo(f"unchanged {survey.name} ({where})")
        if survey.retired:
            click.echo(f"  note: {survey.name} is retired; it takes no requests until restored")
