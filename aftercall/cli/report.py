"""`aftercall report`: the supervisors' figures in the terminal, as CSV or as JSON.

The table shows the text steps of the funnel (texted, undelivered, no reply) once texts
are part of the report: a request of it was texted, or `--channel` names a text channel.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

import click

from aftercall.cli.context import Context
from aftercall.wiring import runtime_from_settings
from scoring.filters import parse_report_query
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


@click.command("report")
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
    """NPS, CSAT, CES and the call funnel, grouped and filtered."""
    settings = click.get_current_context().ensure_object(Context).settings
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
