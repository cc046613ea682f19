"""`aftercall report`: the supervisors' figures in the terminal, as CSV or as JSON.

The table shows the text steps of the funnel (texted, undelivered, no reply) once texts
are part of the report: a request of it was texted, or `--channel` names a text channel.

`aftercall report follow-ups` gives the follow-ups' figures (scoring.follow_up_figures):
opened, open, overdue, time to first contact and to resolution, resolved within SLA.
`report` is a group for it, which still runs the survey report when no subcommand is
named, so every `aftercall report ...` line written before keeps working.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

import click
from click.core import ParameterSource

from aftercall.cli.context import Context
from aftercall.wiring import runtime_from_settings
from scoring import follow_up_figures
from scoring.filters import parse_moment, parse_report_query
from scoring.follow_ups import Viewer, visible
from scoring.formats import to_csv, to_table
from scoring.report import (
    CHANNELS,
    MODES,
    TEXT_CHANNELS,
    ReportError,
    ReportRow,
    report,
    spoken_share,
    totals,
)


def register_commands(group: click.Group) -> None:
    group.add_command(report_command)


@click.group("report", invoke_without_command=True, subcommand_metavar="[follow-ups [OPTIONS]]")
@click.option("--by", "by", multiple=True, help="agent, queue, team, survey, language, "
              "mode, channel, meta:<key>, day, week or month; repeat or comma-separate.")  # fmt: skip
@click.option("--since", help="First day (2026-11-01, local) or an ISO date-time with offset.")
@click.option("--until", help="Last day, included (or an ISO date-time, excluded).")
@click.option("--survey")
@click.option("--queue")
@click.option("--team")
@click.option("--agent")
@click.option("--language")
@click.option("--mode", type=click.Choice(MODES),
              help="Only callback surveys, or only in-call ones.")  # fmt: skip
@click.option("--channel", type=click.Choice(CHANNELS),
              help="Only surveys by call (voice), by text (sms), or texted after "
                   "unanswered calls (sms_fallback).")  # fmt: skip
@click.option("--compare", type=click.Choice(["previous"]),
              help="Also the period of the same length just before (needs --since/--until).")  # fmt: skip
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)  # fmt: skip
def report_command(
    output: str, by: tuple[str, ...], compare: str | None, **filters: str | None
) -> None:
    """NPS, CSAT, CES and the call funnel, grouped and filtered.

    `aftercall report follow-ups` gives the follow-ups' figures instead.
    """
    context = click.get_current_context()
    if context.invoked_subcommand is not None:
        _refuse_options_before(context)
        return
    settings = context.ensure_object(Context).settings
    params = {**filters, "by": ",".join(by)}
    if compare and output == "csv":
        raise click.UsageError("--compare works with --format table or json, not csv")
    runtime = runtime_from_settings(settings)
    try:
        query = parse_report_query(params, ZoneInfo(settings.report_time_zone))
        previous = query.previous_period() if compare == "previous" else None
        with runtime.db.session() as session:
            rows = report(session, query)
            previous_rows = report(session, previous) if previous else None
            spoken = spoken_share(session, query)
    except ReportError as exc:
        raise _usage_error(exc) from None
    finally:
        runtime.db.dispose()
    if output == "json":
        body = {"rows": [row.to_json() for row in rows], "answer_input": spoken.to_json()}
        if previous_rows is not None:
            body["previous"] = {"rows": [row.to_json() for row in previous_rows]}
        json.dump(body, sys.stdout, indent=2)
        click.echo()
        return
    if output == "csv":
        click.echo(to_csv(rows, query.by), nl=False)
        return
    texts = query.channel in TEXT_CHANNELS
    _echo_table(rows, query.by, "no survey requests match", texts=texts)
    if spoken.spoken:
        # Only once customers speak: a keypad-only table stays as it always was.
        click.echo(
            f"answers said aloud rather than keyed: {spoken.spoken} of {spoken.answers} "
            f"({spoken.percent:.0f}%)"
        )
    if previous is not None and previous_rows is not None:
        last_day = previous.until - timedelta(microseconds=1)
        click.echo(f"\nPrevious period ({previous.since:%Y-%m-%d} to {last_day:%Y-%m-%d}):")
        _echo_table(
            previous_rows,
            query.by,
            "no survey requests in the previous period",
            # The same columns as the period above, to compare them side by side.
            texts=texts or any(row.has_texts for row in rows),
        )


def _refuse_options_before(context: click.Context) -> None:
    """`aftercall report --by team follow-ups` would drop `--by team` silently: the
    survey report's options are not the follow-ups' (theirs come after `follow-ups`)."""
    given = [
        name
        for name in context.params
        if context.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
    if given:
        raise click.UsageError(
            f"--{given[0].replace('_', '-')} belongs to the survey report; put the options of "
            f"{context.invoked_subcommand} after it: aftercall report "
            f"{context.invoked_subcommand} --by team"
        )


@report_command.command(
    "follow-ups",
    short_help="Follow-ups: opened, open, overdue, hours to contact and to resolve, SLA.",
)
@click.option("--by", "by", multiple=True, type=click.Choice(tuple(follow_up_figures.GROUPS)),
              help="team, owner or survey; repeat for several.")  # fmt: skip
@click.option("--since", help="First day the follow-ups opened (2026-11-01, local) "
              "or an ISO date-time with offset.")  # fmt: skip
@click.option("--until", help="Last day, included (or an ISO date-time, excluded).")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)  # fmt: skip
def follow_ups_command(
    by: tuple[str, ...], since: str | None, until: str | None, output: str
) -> None:
    """Follow-ups opened in the period: how many, open, overdue, the median hours to the
    first contact and to resolution, and the share resolved within the SLA (of those
    resolved or closed as won't fix). Test calls never count; the command sees every
    team's, as an admin does."""
    settings = click.get_current_context().ensure_object(Context).settings
    zone = ZoneInfo(settings.report_time_zone)
    try:
        since_at = None if since is None else parse_moment(since, "since", zone, end_of_day=False)
        until_at = None if until is None else parse_moment(until, "until", zone, end_of_day=True)
        if since_at and until_at and since_at >= until_at:
            raise ReportError("must be before until", "since")
        by = follow_up_figures.parse_by(by)
    except ReportError as exc:
        raise _usage_error(exc) from None
    except follow_up_figures.FigureError as exc:
        raise click.BadParameter(str(exc), param_hint="'--by'") from None
    runtime = runtime_from_settings(settings)
    # Whoever runs the CLI runs the server: they see every team's follow-ups.
    everyone = visible(Viewer("cli", "admin"))
    try:
        now = runtime.now()
        with runtime.db.session() as session:
            rows, total = follow_up_figures.with_total(
                session, by, visible=everyone, now=now, since=since_at, until=until_at
            )
    finally:
        runtime.db.dispose()
    if output == "json":
        body = {"rows": [row.to_json() for row in rows], "total": total.to_json()}
        json.dump(body, sys.stdout, indent=2)
        click.echo()
    elif output == "csv":
        click.echo(follow_up_figures.to_csv(rows, by), nl=False)
    elif by and not rows:
        click.echo("no follow-ups match")
    else:
        click.echo(follow_up_figures.to_table(rows, by, total if by else None))


def _usage_error(error: ReportError) -> click.UsageError:
    """A ReportError as the command line says it: the parameter by its option's name."""
    if error.parameter is None:
        return click.UsageError(error.problem)
    return click.BadParameter(error.problem, param_hint=f"'--{error.parameter}'")


def _echo_table(
    rows: list[ReportRow], by: tuple[str, ...], empty: str, *, texts: bool = False
) -> None:
    if rows:
        click.echo(to_table(rows, by, totals(rows) if by else None, texts=texts))
    else:
        click.echo(empty)
