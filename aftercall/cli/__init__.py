"""The `aftercall` command line: each command parses its options and calls the domain."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click
from rq.registry import ScheduledJobRegistry
from sqlalchemy.orm import Session

from aftercall.cli import intake as cli_intake
from aftercall.cli import report as cli_report
from aftercall.cli import surveys as cli_surveys
from aftercall.cli import users as cli_users
from aftercall.cli.context import Context, pass_context
from aftercall.demo import (
    CampaignStopped,
    DemoResult,
    PortUnavailable,
    SimulatedDeployment,
    demo_settings,
    demo_start_time,
    scores_table,
    simulated_deployment,
    stop_on_signals,
)
from aftercall.doctor import Status, diagnose
from aftercall.wiring import runtime_from_settings
from core import migrate
from core.db import one_off_session, utcnow
from core.retention import customer_data, delete_recordings, forget_customer, parse_age
from core.retention import purge as purge_old
from core.runtime import Runtime
from core.telephony import rest_client
from dialer.dispatch import pause, paused_reason, resume
from dialer.intake import IntakeRejected, normalise_phone
from dialer.scheduling import CALL_QUEUE, reconcile
from phonesim.account import DEFAULT_NUMBERS, E164
from phonesim.server import serve
from scoring import rollup

if TYPE_CHECKING:
    import threading


@click.group()
def main() -> None:
    """aftercall: post-call IVR surveys for contact centers."""


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(ctx: Context, revision: str) -> None:
    """Bring the database schema up to date (safe to run on every release).

    It also keeps the daily report rollup in REPORT_TIME_ZONE (PostgreSQL and SQLite),
    rebuilding it (once) when that setting changed.
    """

    url = ctx.settings.database_url
    migrate.upgrade(url, revision)
    click.echo(f"database at revision {migrate.current_revision(url)}")
    if revision == "head":
        zone = ZoneInfo(ctx.settings.report_time_zone)
        with one_off_session(url) as session:
            if rollup.switch_on(session, zone):
                click.echo(f"report rollup rebuilt in {zone.key}")


@db.command("rebuild-rollup")
@pass_context
def db_rebuild_rollup(ctx: Context) -> None:
    """Rebuild the daily report rollup from the requests and answers.

    Needed only after tables were changed behind the triggers' back (TRUNCATE, a
    restore of one table); writers wait while it runs.
    """

    with one_off_session(ctx.settings.database_url) as session:
        rollup.switch_off(session)
        rollup.switch_on(session, ZoneInfo(ctx.settings.report_time_zone))
    click.echo(f"report rollup rebuilt in {ctx.settings.report_time_zone}")


@db.command("current")
@pass_context
def db_current(ctx: Context) -> None:
    """Print the schema revision the database is at."""
    click.echo(
        migrate.current_revision(ctx.settings.database_url) or "empty (run: aftercall db upgrade)"
    )


@main.command()
@click.option("--calls", default=40, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option(
    "--serve",
    is_flag=True,
    help="Then keep serving the dashboard, API and webhooks, with a demo admin and "
    "test calls answered, until Ctrl-C.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve: listen here.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="With --serve: listen on this port (0: any free one).",
)
@click.option(
    "--source",
    type=click.Choice(["api", "connect"]),
    default="api",
    show_default=True,
    help="How the finished calls come in: the intake API, or as an Amazon Connect contact "
    "center sends them (contact records through Firehose, some calls transferred).",
)
def demo(calls: int, seed: int, serve: bool, host: str, port: int, source: str) -> None:
    """Run a simulated survey campaign end to end (no Twilio account, no servers).

    With --serve it then keeps the app running on --host and --port over the demo's own
    database (never DATABASE_URL): sign in with the demo admin it prints, browse the
    campaign's reports, and place test calls that the simulator answers. Ctrl-C stops.
    """

    ctx = click.get_current_context()
    if not serve:
        for name in ("host", "port"):
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
                raise click.UsageError(f"--{name} needs --serve")
    settings = demo_settings(serve=serve)
    click.echo(f"aftercall demo: {calls} finished support calls, seed {seed}")
    if source == "connect":
        click.echo("as Amazon Connect contact records through Firehose's HTTP endpoint")
    click.echo(f"database: {settings.database_url}")
    if serve and os.environ.get("DATABASE_URL"):
        click.echo("(DATABASE_URL ignored: --serve keeps its demo admin in its own database)")
    start = demo_start_time(datetime.now(UTC).date())
    with stop_on_signals() as stop:
        try:
            with simulated_deployment(
                settings, seed, start, host, port if serve else 0
            ) as deployment:
                with click.progressbar(length=calls, label="placing survey calls") as bar:
                    result = deployment.run_campaign(
                        calls, progress=bar.update, stop=stop, source=source
                    )
                _echo_demo_result(result)
                if serve:
                    _serve_demo(deployment, stop)
        except CampaignStopped:
            click.echo("\nstopped before the campaign ended")
            sys.exit(130)
        except PortUnavailable as exc:
            raise click.ClickException(
                f"{exc}; choose another --host or --port (--port 0: any free port)"
            ) from None


def _echo_demo_result(result: DemoResult) -> None:
    click.echo("\nA call as the customer heard it:")
    for line in result.sample_transcript:
        click.echo(line)

    click.echo("\nOutcomes:")
    for state, count in sorted(result.outcomes.items(), key=lambda item: -item[1]):
        click.echo(f"  {state.value:<12} {count:>5}")
    if result.rejected:
        click.echo(f"  {'rejected':<12} {result.rejected:>5}  (at intake)")

    click.echo("\nCalled back or surveyed in the call:")
    click.echo(f"  {'mode':<12}{'requests':>9}{'reached':>9}{'completed':>11}{'of requests':>13}")
    for row in result.modes:
        mode = "in the call" if row.group.get("mode") == "in_call" else "callback"
        share = f"{100.0 * row.completed / row.received:.0f}%" if row.received else "-"
        click.echo(f"  {mode:<10}{row.received:>9}{row.reached:>9}{row.completed:>11}{share:>13}")

    lift = result.fallback
    if lift is not None and lift.texted:
        click.echo(
            f"\nSMS fallback: {lift.texted} customers who never picked up were texted the "
            f"survey; {lift.by_text} answered by text.\n"
            f"  callback requests answered: {lift.rate_without:.0f}% by calls alone, "
            f"{lift.rate_with:.0f}% with the fallback"
        )

    if result.follow_ups:
        opened = sum(result.follow_ups.values())
        owners = ", ".join(
            f"{owner or 'unassigned'} {count}" for owner, count in result.follow_ups.items()
        )
        click.echo(
            f"\nFollow-ups opened for unhappy customers: {opened} ({owners}); "
            "each is due 48 h after it opened (the dashboard's Follow-ups page)"
        )

    if result.spoken is not None and result.spoken.answers:
        click.echo(
            f"\nAnswers said aloud rather than keyed: {result.spoken.spoken} of "
            f"{result.spoken.answers} ({result.spoken.percent:.0f}%)"
        )

    click.echo("\nScores by agent:")
    click.echo(scores_table(result.agents))


def _serve_demo(deployment: SimulatedDeployment, stop: threading.Event) -> None:
    admin = deployment.open_to_visitors()
    now = deployment.network.clock.now()
    click.echo(
        f"\nServing the campaign's dashboard, API and webhooks (simulated time {now:%Y-%m-%d %H:%M} UTC)"
    )
    click.echo(f"dashboard: {admin.dashboard_url}")
    click.echo(f"user:      {admin.username}")
    click.echo(f"password:  {admin.password}  (an admin of the demo database only)")
    click.echo(
        "Test calls (Surveys, then 'Place a test call'), to any number, are dialled at once\n"
        "and answered by a simulated cooperative customer who answers every question;\n"
        "a call due later (the number's calling hours) moves the simulated clock there.\n"
        "Ctrl-C stops."
    )

    def clock_moved(when: datetime) -> None:
        click.echo(f"simulated clock moved to {when:%Y-%m-%d %H:%M} UTC for a call due then")

    deployment.keep_dialing(stop, on_clock_jump=clock_moved)
    click.echo("demo stopped")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8099, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--realtime", is_flag=True, help="Wait out rings and prompts on the wall clock.")
@click.option(
    "--number",
    "numbers",
    multiple=True,
    metavar="E164",
    help="Another voice number the account owns (repeatable). It always owns "
    "TWILIO_FROM_NUMBER and the demo's and tests' numbers.",
)
@click.option(
    "--caller-id",
    "caller_ids",
    multiple=True,
    metavar="E164",
    help="A verified caller ID of the account (repeatable); a default number given "
    "here (TWILIO_FROM_NUMBER, say) is a caller ID only, not an owned number.",
)
@click.option(
    "--account-status",
    type=click.Choice(["active", "suspended", "closed"]),
    default="active",
    show_default=True,
    help="What the Account resource says; an account not active places no calls.",
)
@pass_context
def phonesim(
    ctx: Context,
    host: str,
    port: int,
    seed: int,
    realtime: bool,
    numbers: tuple[str, ...],
    caller_ids: tuple[str, ...],
    account_status: str,
) -> None:
    """Run the phone network simulator as a local Twilio stand-in (TWILIO_API_BASE).

    Its account is TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, so `aftercall doctor`
    with the same settings checks the account and the from-number against it.
    """

    for option, given in (("--number", numbers), ("--caller-id", caller_ids)):
        for number in given:
            if not E164.fullmatch(number):
                raise click.BadParameter(
                    f"{number!r} is not a phone number in E.164 (+14155550100)",
                    param_hint=option,
                )
    settings = ctx.settings
    from_number = settings.twilio_from_number
    defaults = [*DEFAULT_NUMBERS]
    if from_number and E164.fullmatch(from_number):
        defaults.append(from_number)
    elif from_number:
        click.echo(f"TWILIO_FROM_NUMBER {from_number!r} is not E.164: the account does not own it")
    owned = [number for number in defaults if number not in caller_ids] + list(numbers)
    serve(
        host,
        port,
        account_sid=settings.twilio_account_sid or "AC" + "0" * 32,
        auth_token=settings.twilio_auth_token or "phonesim-auth-token",
        seed=seed,
        realtime=realtime,
        numbers=dict.fromkeys(owned),
        caller_ids=caller_ids,
        account_status=account_status,
    )


@main.command()
@click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.5, 60),
    help="Seconds to wait for each server.",
)
def doctor(timeout: float) -> None:
    """Check the configuration, database, Redis, Twilio and the public URL; exit 1 on a FAIL."""

    diagnosis = diagnose(timeout=timeout)
    section = None
    for finding in diagnosis.findings:
        if finding.check != section:
            section = finding.check
            click.echo(f"\n{section}" if diagnosis.findings[0] is not finding else section)
        click.echo(f"  {finding.status.value:<5} {finding.message}")
        if finding.fix and finding.status is not Status.OK:
            click.echo(f"        fix: {finding.fix}")
    if diagnosis.webhook_urls:
        click.echo(
            "\nwebhook URLs: aftercall gives them to Twilio with each call it places and in "
            "each TwiML answer;\nnothing needs configuring on the number in the Twilio Console"
        )
        for webhook in diagnosis.webhook_urls:
            click.echo(f"  {webhook.purpose:<18} {webhook.url}")
    counts = {status: 0 for status in Status}
    for finding in diagnosis.findings:
        counts[finding.status] += 1
    click.echo(
        f"\n{counts[Status.FAIL]} failed, {counts[Status.WARN]} warnings, {counts[Status.OK]} ok"
    )
    sys.exit(1 if diagnosis.failed else 0)


@main.group()
def dialer() -> None:
    """The dialer: queue health, pausing and resuming calls."""


def _runtime(ctx: Context) -> Runtime:

    return runtime_from_settings(ctx.settings)


@dialer.command("status")
@pass_context
def dialer_status(ctx: Context) -> None:
    """Print queued and scheduled call jobs and whether dialing is paused."""

    runtime = _runtime(ctx)
    queue = runtime.queue(CALL_QUEUE)
    click.echo(f"queued now:      {queue.count}")
    click.echo(f"scheduled later: {ScheduledJobRegistry(queue=queue).count}")
    reason = paused_reason(runtime)
    click.echo(f"dialing:         {'PAUSED: ' + reason if reason else 'running'}")


@dialer.command("pause")
@click.option("--reason", default="paused by an operator", show_default=True)
@pass_context
def dialer_pause(ctx: Context, reason: str) -> None:
    """Stop placing calls (due calls are held back and retried, not lost)."""

    pause(_runtime(ctx), reason)
    click.echo(f"dialing paused: {reason}")


@dialer.command("resume")
@pass_context
def dialer_resume(ctx: Context) -> None:
    """Resume placing calls, e.g. after fixing Twilio credentials."""

    resume(_runtime(ctx))
    click.echo("dialing resumed")


@dialer.command("reconcile")
@pass_context
def dialer_reconcile(ctx: Context) -> None:
    """Re-queue scheduled calls that Redis lost (the database is the source of truth)."""

    click.echo(f"re-queued {reconcile(_runtime(ctx))} scheduled calls")


@main.command()
@click.option("--older-than", "age", required=True, help="e.g. 180d or 26w (support call end).")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@pass_context
def purge(ctx: Context, age: str, dry_run: bool) -> None:
    """Anonymise customers' personal data in old survey requests; figures stay the same."""

    try:
        before = utcnow() - parse_age(age)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    with one_off_session(ctx.settings.database_url) as session:
        report = purge_old(session, before, dry_run=dry_run)
        verb = "would anonymise" if dry_run else "anonymised"
        click.echo(
            f"{verb} {report.requests} survey requests and {report.comments} recorded comments "
            f"from support calls that ended before {before:%Y-%m-%d %H:%M} UTC"
        )
        _echo_legs(report.legs, dry_run)
        if not dry_run:
            _delete_recordings(ctx, session)


@main.group()
def customer() -> None:
    """One customer's data, by phone number (data subject requests)."""


def _customer_phone(ctx: Context, phone: str) -> str:

    try:
        return normalise_phone(phone, ctx.settings.default_region or None)
    except IntakeRejected as exc:
        raise click.BadParameter(exc.detail, param_hint="PHONE") from None


@customer.command("export")
@click.argument("phone")
@pass_context
def customer_export(ctx: Context, phone: str) -> None:
    """Print, as JSON, everything aftercall holds about PHONE."""

    number = _customer_phone(ctx, phone)
    with one_off_session(ctx.settings.database_url) as session:
        click.echo(json.dumps(customer_data(session, number), indent=2, ensure_ascii=False))


@customer.command("forget")
@click.argument("phone")
@click.option("--dry-run", is_flag=True)
@pass_context
def customer_forget(ctx: Context, phone: str, dry_run: bool) -> None:
    """Anonymise every survey of PHONE (the do-not-call entry, if any, is kept)."""

    number = _customer_phone(ctx, phone)
    with one_off_session(ctx.settings.database_url) as session:
        report = forget_customer(session, number, dry_run=dry_run)
        verb = "would anonymise" if dry_run else "anonymised"
        click.echo(
            f"{verb} {report.requests} survey requests and {report.comments} recorded comments"
        )
        _echo_legs(report.legs, dry_run)
        if not dry_run:
            _delete_recordings(ctx, session)


def _echo_legs(legs: int, dry_run: bool) -> None:
    if legs:
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{verb} {legs} legs of conversations kept for their survey")


def _delete_recordings(ctx: Context, session: Session) -> None:
    """The anonymised comments' audio, deleted in the Twilio account (or why not)."""

    settings = ctx.settings
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        click.echo("recordings at Twilio not deleted: TWILIO_ACCOUNT_SID/AUTH_TOKEN not set")
        return
    cleanup = delete_recordings(session, rest_client(settings))
    click.echo(
        f"recordings at Twilio: {cleanup.deleted} deleted, {cleanup.already_gone} already gone,"
        f" {cleanup.failed} failed (run again to retry)"
    )


# The intake (apikey, enqueue, import), report, survey and dashboard-user commands live
# in their own modules; they read settings through Context when they run.
for module in (cli_intake, cli_report, cli_surveys, cli_users):
    module.register_commands(main)
