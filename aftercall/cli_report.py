"""`aftercall report`: the supervisors' figures in the terminal, as CSV or as JSON."""

from __future__ import annotations

import json
import sys
from zoneinfo import ZoneInfo

import click

from aftercall.runtime import Runtime
from scoring.filters import parse_report_query
from scoring.formats import to_csv, to_table
from scoring.report import ReportError, report, totals


def register_commands(group: click.Group) -> None:
    group.add_command(report_command)


@click.command("report")
@click.option("--by", "by", multiple=True, help="agent, queue, team, survey, language, "
              "meta:<key>, day, week or month; repeat or comma-separate.")  # fmt: skip
@click.option("--since", help="First day (2026-11-01, local) or an ISO date-time with offset.")
@click.option("--until", help="Last day, included (or an ISO date-time, excluded).")
@click.option("--survey")
@click.option("--queue")
@click.option("--team")
@click.option("--agent")
@click.option("--language")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)  # fmt: skip
def report_command(output: str, by: tuple[str, ...], **filters: str | None) -> None:
    """NPS, CSAT, CES and the call funnel, grouped and filtered."""
    from aftercall.cli import _Context

    settings = click.get_current_context().ensure_object(_Context).settings
    params = {**filters, "by": ",".join(by)}
    runtime = Runtime.from_settings(settings)
    try:
        query = parse_report_query(params, ZoneInfo(settings.report_time_zone))
        with runtime.db.session() as session:
            rows = report(session, query)
    except ReportError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        runtime.db.dispose()
    if output == "json":
        json.dump({"rows": [row.to_json() for row in rows]}, sys.stdout, indent=2)
        click.echo()
    elif output == "csv":
        click.echo(to_csv(rows, query.by), nl=False)
    elif rows:
        click.echo(to_table(rows, query.by, totals(rows) if query.by else None))
    else:
        click.echo("no survey requests match")
