"""The `aftercall` command line: each command parses its options and calls the domain."""

from __future__ import annotations

import sys

import click

from aftercall import migrate
from aftercall.config import ConfigError, Settings
from aftercall.survey import SurveyCatalog, SurveyError


class _Context:
    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings.from_env()
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._settings


pass_context = click.make_pass_decorator(_Context, ensure=True)


@click.group()
def main() -> None:
    """aftercall: post-call IVR surveys for contact centers."""


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(ctx: _Context, revision: str) -> None:
    """Bring the database schema up to date (safe to run on every release)."""
    migrate.upgrade(ctx.settings.database_url, revision)
    click.echo(f"database at revision {migrate.current_revision(ctx.settings.database_url)}")


@db.command("current")
@pass_context
def db_current(ctx: _Context) -> None:
    """Print the schema revision the database is at."""
    click.echo(
        migrate.current_revision(ctx.settings.database_url) or "empty (run: aftercall db upgrade)"
    )


@main.group()
def surveys() -> None:
    """Survey definitions (TOML files in SURVEYS_DIR)."""


@surveys.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@pass_context
def surveys_check(ctx: _Context, directory: str | None) -> None:
    """Validate every survey file; exit 1 naming the file and field of the first error."""
    from pathlib import Path

    from ivr.prompts import check_phrases

    folder = Path(directory) if directory else ctx.settings.surveys_dir
    try:
        catalog = SurveyCatalog.from_directory(folder)
        for name in catalog.names():
            check_phrases(catalog.get(name), f"{name}.toml")
    except SurveyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for name in catalog.names():
        definition = catalog.get(name)
        languages = ", ".join(sorted(definition.languages))
        click.echo(f"ok  {name}: {len(definition.questions)} questions ({languages})")
