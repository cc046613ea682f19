"""The dashboard's tables (agents, modes, channels, trend, detractors) as rows of values,
and their CSV.

A table is built once from the report figures, then rendered twice: as HTML by the
dashboard template and as CSV by the export. Both read the same `Table`, so a download
has exactly the rows, columns and rounding the supervisor was looking at. This module
does not query: it is handed ReportRows (scoring.report) and Detractors
(scoring.detractors). The detractor table passes its entries through
`scoring.detractors.shown_to` for the reader's `Contact`, so the page and its download
carry exactly what that reader may see, and no recording column for a masked reader.

A request without an agent (an in-call survey no support call claimed, or a call intake
got without one) shows as "unattributed", on the page and in its CSV alike.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from core.models import Channel, SurveyMode
from scoring.detractors import Contact, Detractor, shown_to
from scoring.report import UNATTRIBUTED, ReportRow

Value = str | int | float | None
NO_AGENT = UNATTRIBUTED
MODE_LABELS = {SurveyMode.CALLBACK.value: "Callback", SurveyMode.IN_CALL.value: "In-call"}
CHANNEL_LABELS = {
    Channel.VOICE.value: "Voice",
    Channel.SMS.value: "SMS",
    Channel.SMS_FALLBACK.value: "SMS fallback",
}
# A spreadsheet runs a cell starting with one of these as a formula; customers' comments
# and agent names come from outside, so such text is exported with a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class Column:
    key: str  # the `sort` parameter's value; stable, unlike the label
    label: str  # the header, on screen and in the CSV
    kind: str  # text | score | percent | margin | number | count | time | link
    value: Callable[[object], Value]

    def text(self, value: Value) -> str:
        """The value as the page shows it: same rounding as the CSV, plus units."""
        if value is None or value == "":
            return "–"
        if self.kind == "score":
            return f"{value:+.1f}"
        if self.kind == "percent":
            return f"{value:.1f}%"
        if self.kind == "margin":
            return f"±{value:.1f}"
        if self.kind == "number":
            return f"{value:.2f}"
        return str(value)

    @property
    def numeric(self) -> bool:
        return self.kind in ("score", "percent", "margin", "number", "count")


@dataclass(frozen=True)
class Table:
    name: str  # agents | trend | detractors, the export's `table` parameter
    columns: tuple[Column, ...]
    rows: list[list[Value]]

    def column(self, key: str) -> Column:
        return next(column for column in self.columns if column.key == key)


AGENT_COLUMNS = (
    Column("agent", "Agent", "text", lambda r: r.group.get("agent") or NO_AGENT),
    Column("nps", "NPS", "score", lambda r: _round(r.nps)),
    Column("nps_n", "NPS n", "count", lambda r: r.nps_responses),
    Column("csat", "CSAT", "percent", lambda r: _round(r.csat)),
    Column("csat_n", "CSAT n", "count", lambda r: r.csat_responses),
    Column("ces", "CES", "number", lambda r: _round(r.ces, 2)),
    Column("completed", "Completed", "count", lambda r: r.completed),
    Column("response_rate", "Response rate", "percent", lambda r: _round(r.response_rate)),
)
AGENT_SORTS = tuple(column.key for column in AGENT_COLUMNS)
DEFAULT_AGENT_SORT = "agent"


def parse_sort(text: str | None) -> tuple[str, bool]:
    """`nps` (ascending) or `-nps` (descending) into (column key, descending); unknown
    keys fall back to the default rather than failing, as a stale bookmark would."""
    text = (text or "").strip()
    descending = text.startswith("-")
    key = text.removeprefix("-")
    if key not in AGENT_SORTS:
        return DEFAULT_AGENT_SORT, False
    return key, descending


def agent_table(rows: Sequence[ReportRow], sort: str | None = None) -> Table:
    """One row per agent, ordered by the chosen column; missing figures always last."""
    key, descending = parse_sort(sort)
    values = [[column.value(row) for column in AGENT_COLUMNS] for row in rows]
    index = AGENT_SORTS.index(key)
    present = [row for row in values if row[index] is not None]
    missing = [row for row in values if row[index] is None]
    # Ties keep the agent order the report gave, whichever way the column is sorted.
    present.sort(key=lambda row: row[index], reverse=descending)
    return Table("agents", AGENT_COLUMNS, present + missing)


MODE_COLUMNS = (
    Column("mode", "Mode", "text", lambda r: mode_label(r.group.get("mode"))),
    Column("nps", "NPS", "score", lambda r: _round(r.nps)),
    Column("nps_margin", "NPS ±", "margin", lambda r: _round(r.nps_margin)),
    Column("nps_n", "NPS n", "count", lambda r: r.nps_responses),
    Column("csat", "CSAT", "percent", lambda r: _round(r.csat)),
    Column("csat_n", "CSAT n", "count", lambda r: r.csat_responses),
    Column("ces", "CES", "number", lambda r: _round(r.ces, 2)),
    Column("received", "Received", "count", lambda r: r.received),
    Column("reached", "Reached", "count", lambda r: r.reached),
    Column("completed", "Completed", "count", lambda r: r.completed),
    Column("response_rate", "Response rate", "percent", lambda r: _round(r.response_rate)),
)


def mode_label(mode: str | None) -> str | None:
    """How the page names a survey mode (the API's value where it knows no name)."""
    return MODE_LABELS.get(mode or "", mode)


def mode_table(rows: Sequence[ReportRow]) -> Table:
    """One row per survey mode that has requests in the range, callback first: the
    response rate and scores of each side by side (a report by mode)."""
    return Table("modes", MODE_COLUMNS, [[c.value(row) for c in MODE_COLUMNS] for row in rows])


CHANNEL_COLUMNS = (
    Column("channel", "Channel", "text", lambda r: channel_label(r.group.get("channel"))),
    Column("nps", "NPS", "score", lambda r: _round(r.nps)),
    Column("nps_n", "NPS n", "count", lambda r: r.nps_responses),
    Column("csat", "CSAT", "percent", lambda r: _round(r.csat)),
    Column("csat_n", "CSAT n", "count", lambda r: r.csat_responses),
    Column("ces", "CES", "number", lambda r: _round(r.ces, 2)),
    Column("received", "Received", "count", lambda r: r.received),
    Column("placed", "Placed", "count", lambda r: r.placed),
    Column("undelivered", "Undelivered", "count", lambda r: r.undelivered),
    Column("reached", "Reached", "count", lambda r: r.reached),
    Column("no_reply", "No reply", "count", lambda r: r.no_reply),
    Column("completed", "Completed", "count", lambda r: r.completed),
    Column("response_rate", "Response rate", "percent", lambda r: _round(r.response_rate)),
)


def channel_label(channel: str | None) -> str | None:
    """How the page names a channel (the API's value where it knows no name)."""
    return CHANNEL_LABELS.get(channel or "", channel)


def channel_table(rows: Sequence[ReportRow]) -> Table:
    """One row per channel that has requests in the range, voice first: each channel's
    response rate and scores side by side, with the texts that never arrived and those
    never answered (a report by channel). In CHANNEL_LABELS' order, not the report's
    alphabetical one, which would put voice, the usual channel, last."""
    order = list(CHANNEL_LABELS)

    def position(row: ReportRow) -> int:
        channel = row.group.get("channel")
        return order.index(channel) if channel in order else len(order)

    ordered = sorted(rows, key=position)
    return Table(
        "channels", CHANNEL_COLUMNS, [[c.value(r) for c in CHANNEL_COLUMNS] for r in ordered]
    )


def trend_columns(unit: str) -> tuple[Column, ...]:
    return (
        Column("period", "Period", "text", lambda r: r.group.get(unit)),
        Column("nps", "NPS", "score", lambda r: _round(r.nps)),
        Column("nps_margin", "NPS ±", "margin", lambda r: _round(r.nps_margin)),
        Column("nps_n", "NPS n", "count", lambda r: r.nps_responses),
        Column("csat", "CSAT", "percent", lambda r: _round(r.csat)),
        Column("csat_margin", "CSAT ±", "margin", lambda r: _round(r.csat_margin)),
        Column("csat_n", "CSAT n", "count", lambda r: r.csat_responses),
        Column("ces", "CES", "number", lambda r: _round(r.ces, 2)),
        Column("completed", "Completed", "count", lambda r: r.completed),
        Column("response_rate", "Response rate", "percent", lambda r: _round(r.response_rate)),
    )


def trend_table(rows: Sequence[ReportRow], unit: str) -> Table:
    """One row per day, week or month that has survey requests, oldest first."""
    columns = trend_columns(unit)
    return Table("trend", columns, [[c.value(row) for c in columns] for row in rows])


def detractor_columns(zone: ZoneInfo, contact: Contact) -> tuple[Column, ...]:
    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    columns = (
        Column("time", "Time", "time", lambda d: local(d.call_ended_at)),
        Column("phone", "Phone", "text", lambda d: d.phone),
        Column("agent", "Agent", "text", lambda d: d.agent or NO_AGENT),
        Column("queue", "Queue", "text", lambda d: d.queue),
        Column("nps", "NPS", "count", lambda d: d.answers.get("nps")),
        Column("csat", "CSAT", "count", lambda d: d.answers.get("csat")),
        Column("comment", "Comment", "text", lambda d: d.comment),
    )
    if contact is Contact.FULL:
        columns += (Column("recording", "Recording", "link", lambda d: safe_link(d.recording_url)),)
    return columns


def detractor_table(entries: Sequence[Detractor], zone: ZoneInfo, contact: Contact) -> Table:
    """The detractors on one page of the list, newest first as the query returned them,
    as a reader with `contact` may see them."""
    columns = detractor_columns(zone, contact)
    shown = [shown_to(entry, contact) for entry in entries]
    return Table("detractors", columns, [[c.value(d) for c in columns] for d in shown])


def safe_link(url: str | None) -> str | None:
    """Only web addresses become links: a javascript: URL in a stored recording address
    must not turn into something a supervisor can click."""
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return None


def _csv_cell(value: Value) -> Value:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.label for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_cell(value) for value in row])
    return buffer.getvalue()
