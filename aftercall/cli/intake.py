"""The intake commands of the `aftercall` CLI: API keys, one call, a CSV file of calls.

    aftercall apikey create NAME [--scope ...] | set-scope NAME --scope ... | revoke NAME | list
    aftercall enqueue --phone ... --source-call-id ... [--ended-at ...] [--metadata K=V]
    aftercall import calls.csv

Each command parses its options, calls dialer (apikeys, csv_import, intake) and prints
the outcome; no intake rule lives here. Registered on the `main` group by
aftercall.cli through `register_commands`; the command context is aftercall.cli.context.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import click

from aftercall.cli.context import Context
from aftercall.web.api_access import iso_utc
from aftercall.wiring import runtime_from_settings
from core import apikeys
from core.config import Settings
from core.db import one_off_session
from core.models import SurveyMode
from core.runtime import Runtime
from dialer.csv_import import (
    CsvFileError,
    RowResult,
    call_from_text,
    import_calls,
    read_calls_file,
)
from dialer.intake import IntakeRejected, IntakeResult, accept_calls


def register_commands(group: click.Group) -> None:
    group.add_command(apikey)
    group.add_command(enqueue)
    group.add_command(import_command)


def _settings() -> Settings:
    # The same per-invocation settings object the other commands get from pass_context.
    return click.get_current_context().ensure_object(Context).settings


@contextmanager
def _runtime() -> Iterator[Runtime]:
    runtime = runtime_from_settings(_settings())
    try:
        yield runtime
    finally:
        runtime.db.dispose()


@click.group()
def apikey() -> None:
    """API keys for the intake and report APIs (only a hash is stored; shown once)."""


def _scope_option(**kwargs: Any) -> Callable[[Callable[..., None]], click.Command]:
    return click.option(
        "--scope",
        "scopes",
        multiple=True,
        type=click.Choice(apikeys.SCOPES),
        help="intake; reports (numbers masked) or reports:full (numbers, recordings); "
        "follow-ups (a CRM mirroring follow-ups). "
        "Repeat for more than one.",
        **kwargs,
    )


@apikey.command("create")
@click.argument("name")
@_scope_option(default=apikeys.DEFAULT_SCOPES, show_default=True)
def apikey_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key for the system NAME and print it (the last line, alone)."""
    try:
        with one_off_session(_settings().database_url) as session:
            key = apikeys.create_key(session, name, scopes)
    except apikeys.ApiKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"API key for {name.strip()} (shown only now; store it as a secret):")
    click.echo(key)


@apikey.command("set-scope")
@click.argument("name")
@_scope_option(required=True)
def apikey_set_scope(name: str, scopes: tuple[str, ...]) -> None:
    """Replace the scopes of the key NAME (from its next request; the key stays the same)."""
    try:
        with one_off_session(_settings().database_url) as session:
            text = apikeys.set_scopes(session, name, scopes).scopes
    except apikeys.ApiKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"API key {name} now has scope {text}")


@apikey.command("revoke")
@click.argument("name")
def apikey_revoke(name: str) -> None:
    """Revoke the key NAME: requests with it are refused (401) from now on."""
    try:
        with one_off_session(_settings().database_url) as session:
            apikeys.revoke_key(session, name)
    except apikeys.ApiKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked API key {name}")


@apikey.command("list")
def apikey_list() -> None:
    """List keys: name, prefix, scopes, created, last used, and whether revoked."""
    with one_off_session(_settings().database_url) as session:
        keys = apikeys.list_keys(session)
    if not keys:
        click.echo("no API keys (create one: aftercall apikey create NAME)")
        return
    click.echo(
        f"{'name':<24} {'prefix':<12} {'scope':<20} {'created':<20} {'last used':<20} status"
    )
    for key in keys:
        status = f"revoked {_minute(key.revoked_at)}" if key.revoked_at else "active"
        click.echo(
            f"{key.name:<24} {key.prefix:<12} {key.scopes.replace(' ', ','):<20} "
            f"{_minute(key.created_at):<20} {_minute(key.last_used_at) or 'never':<20} {status}"
        )


@click.command()
@click.option("--phone", required=True, help="The customer's number (E.164 best).")
@click.option("--source-call-id", required=True, help="Your phone system's id for the call.")
@click.option("--agent")
@click.option("--queue")
@click.option("--team")
@click.option("--language", default="en", show_default=True)
@click.option("--ended-at", help="ISO 8601 with a UTC offset; default now.")
@click.option("--survey", help="Survey name; default DEFAULT_SURVEY.")
@click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE")
@click.option(
    "--mode",
    type=click.Choice([mode.value for mode in SurveyMode]),
    default=SurveyMode.CALLBACK.value,
    show_default=True,
    help="in_call: the customer is transferred to the survey number; prints the transfer.",
)
@click.option(
    "--channel",
    type=click.Choice(["voice", "sms"]),
    help="Survey by call or by text; default: the survey's own channel.",
)
def enqueue(
    phone: str,
    source_call_id: str,
    agent: str | None,
    queue: str | None,
    team: str | None,
    language: str,
    ended_at: str | None,
    survey: str | None,
    metadata: tuple[str, ...],
    mode: str,
    channel: str | None,
) -> None:
    """Report one finished support call; exit 1 if it will not be surveyed."""
    extra = _metadata_options(metadata)
    with _runtime() as runtime:
        fields = {
            "phone": phone,
            "source_call_id": source_call_id,
            "agent": agent or "",
            "queue": queue or "",
            "team": team or "",
            "language": language,
            "ended_at": ended_at or runtime.now().isoformat(),
            "survey": survey or "",
            "survey_channel": channel or "",
        }
        try:
            call = replace(call_from_text(fields, extra), mode=SurveyMode(mode))
            (result,) = accept_calls(runtime, [call])
        except IntakeRejected as exc:
            result = IntakeResult(source_call_id, reason=exc.reason.value, detail=exc.detail)
    if result.accepted and result.transfer is not None:
        transfer = result.transfer
        click.echo(
            f"accepted: request {result.request_id}, waiting for the customer's transfer "
            f"until {iso_utc(transfer.expires_at)}\n"
            f"  token:        {transfer.token}\n"
            f"  Twilio:       <Redirect>{transfer.url}</Redirect>\n"
            f"  phone + DTMF: {transfer.phone or '(set SURVEY_NUMBER)'} then {transfer.digits}"
        )
        return
    if result.accepted and result.due_at is None:
        click.echo(f"accepted: request {result.request_id}: {result.detail}")
        return
    if result.accepted:
        click.echo(
            f"accepted: request {result.request_id}, "
            f"first call planned for {iso_utc(result.due_at)}"
        )
        return
    stored = f" (stored as request {result.request_id})" if result.request_id else ""
    click.echo(f"rejected: {result.reason}: {result.detail}{stored}")
    raise SystemExit(1)


@click.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write every row that was not accepted to this CSV file (line, source call, "
    "reason, detail); the terminal lists the first 1,000.",
)
def import_command(path: Path, rejects: Path | None) -> None:
    """Report the finished calls in a CSV file (header row required).

    Columns: phone, source_call_id, ended_at (required), agent, queue, team, language,
    survey; other columns become metadata. Bad rows are listed by line number and never
    stop the rest. The file is streamed, a thousand rows per transaction, so its size
    does not matter. Exit 0 once the file is processed, 2 if it cannot be read.
    """
    try:
        rows = read_calls_file(path)
    except CsvFileError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    with contextlib.ExitStack() as stack:
        on_rejected = None
        if rejects is not None:
            try:
                handle = stack.enter_context(rejects.open("w", newline="", encoding="utf-8"))
            except OSError as exc:
                click.echo(f"error: cannot write {rejects}: {exc.strerror or exc}", err=True)
                raise SystemExit(2) from None
            on_rejected = _rejects_writer(handle)
        runtime = stack.enter_context(_runtime())
        bar = stack.enter_context(click.progressbar(length=len(rows), label="importing"))
        report = import_calls(runtime, rows, progress=bar.update, on_rejected=on_rejected)
    for row in report.rejected_rows:
        click.echo(f"line {row.line}: {row.result.reason}: {row.result.detail}")
    if report.unlisted:
        where = f"all are in {rejects}" if rejects else "--rejects FILE writes them all"
        click.echo(f"... and {report.unlisted} more rejected rows ({where})")
    rejected = report.total - report.accepted
    click.echo(f"{path.name}: {report.total} rows, {report.accepted} accepted, {rejected} rejected")
    for reason, count in sorted(report.rejections.items(), key=lambda item: (-item[1], item[0])):
        click.echo(f"  {reason:<26} {count:>6}")


def _rejects_writer(handle: TextIO) -> Callable[[RowResult], None]:
    """Rows that were not accepted, written to `handle` as CSV as they are decided."""
    writer = csv.writer(handle)
    writer.writerow(["line", "source_call_id", "reason", "detail"])

    def write(row: RowResult) -> None:
        writer.writerow([row.line, row.result.source_call_id, row.result.reason, row.result.detail])

    return write


def _metadata_options(pairs: tuple[str, ...]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--metadata")
        metadata[key.strip()] = value
    return metadata


def _minute(moment: datetime | None) -> str:
    text = iso_utc(moment)
    return text[:16].replace("T", " ") if text else ""
