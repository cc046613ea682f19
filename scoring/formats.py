"""Report rows as a terminal table or CSV (JSON is ReportRow.to_json).

The table is for reading: scores with their margin of error, an NPS from fewer than
MIN_RELIABLE_SAMPLE answers marked SMALL_SAMPLE_MARK (shown, not hidden: a first look at
a small contact center must show figures) with a note under the table saying why. CSV carries the numbers unrounded by
presentation, one column per figure, for spreadsheets. In both, the group of requests
without an agent, queue or team (an in-call survey no support call claimed) reads
"unattributed", where JSON keeps null and flags the row (ReportRow.unattributed).

Texts' funnel steps (texted, undelivered, no reply): CSV always has their columns (a
spreadsheet's columns stay put, zero where nothing was texted); the table adds them only
when texts are part of the report, so a voice-only table reads as it always did.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from scoring.report import ATTRIBUTION_DIMENSIONS, MIN_RELIABLE_SAMPLE, UNATTRIBUTED, ReportRow

CSV_FIGURES = (
    "nps", "nps_margin", "nps_responses", "promoters", "passives", "detractors",
    "csat", "csat_margin", "csat_mean", "csat_responses", "ces", "ces_low_effort",
    "ces_responses", "received", "suppressed", "placed", "calls_placed", "answered",
    "reached", "completed", "partial", "opted_out", "response_rate",
    "response_rate_placed", "attempts_per_completed", "texted", "undelivered", "no_reply",
)  # fmt: skip


def group_label(row: ReportRow, name: str, missing: str) -> str:
    """A group's value as text: UNATTRIBUTED for a missing agent, queue or team, else
    `missing` for a missing value (a metadata key the request lacks)."""
    value = row.group.get(name)
    if value is not None and value != "":
        return str(value)
    return UNATTRIBUTED if name in ATTRIBUTION_DIMENSIONS else missing


def to_csv(rows: Sequence[ReportRow], by: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*by, *CSV_FIGURES])
    for row in rows:
        figures = row.figures()
        writer.writerow(
            [group_label(row, name, "") for name in by]
            + ["" if figures[name] is None else figures[name] for name in CSV_FIGURES]
        )
    return buffer.getvalue()


# Beside an NPS from fewer than MIN_RELIABLE_SAMPLE answers, in tables for reading.
SMALL_SAMPLE_MARK = "*"
SMALL_SAMPLE_NOTE = (
    f"{SMALL_SAMPLE_MARK} fewer than {MIN_RELIABLE_SAMPLE} answers: the score moves a lot by "
    "chance; read it with its margin (95%) and n"
)


def nps_cell(row: ReportRow) -> str:
    """A row's NPS as a table shows it: with its margin, and marked if the sample is small."""
    if row.nps is None:
        return "-"
    margin = f" ±{row.nps_margin:.0f}" if row.nps_margin is not None else ""
    return f"{row.nps:+.0f}{margin}{'' if row.nps_reliable else SMALL_SAMPLE_MARK}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def to_table(
    rows: Sequence[ReportRow],
    by: Sequence[str],
    total: ReportRow | None = None,
    *,
    texts: bool = False,
) -> str:
    """The rows (and their total) as aligned columns. With `texts`, or when any row has
    texts in it (ReportRow.has_texts), the text steps of the funnel are columns too."""
    texts = texts or any(row.has_texts for row in rows)
    header = [*by, "NPS", "n", "CSAT", "n", "CES", "placed", "completed", "response"]
    if texts:
        header += ["texted", "undelivered", "no reply"]
    lines = []
    for row in [*rows, *([total] if total is not None else [])]:
        group = [group_label(row, name, "(none)") for name in by]
        if row is total:
            group = ["total"] + [""] * (len(by) - 1) if by else []
        csat = "-" if row.csat is None else f"{row.csat:.0f}% ±{row.csat_margin:.0f}"
        lines.append(
            [
                *group,
                nps_cell(row),
                str(row.nps_responses),
                csat,
                str(row.csat_responses),
                "-" if row.ces is None else f"{row.ces:.1f}",
                str(row.placed),
                str(row.completed),
                _percent(row.response_rate),
                *([str(row.texted), str(row.undelivered), str(row.no_reply)] if texts else []),
            ]
        )
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]
    numeric_from = len(by)

    def render(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < numeric_from else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    body = [render(line) for line in lines]
    if total is not None and rows:
        body.insert(len(rows), rule)
    marked = any(
        row.nps is not None and not row.nps_reliable for row in [*rows, *([total] if total else [])]
    )
    return "\n".join([render(header), rule, *body, *([SMALL_SAMPLE_NOTE] if marked else [])])
