"""`aftercall enqueue` and `aftercall import`: the same intake as the API, from a terminal."""

from __future__ import annotations

import csv
import re

import pytest

from core.models import RequestState
from dialer.csv_import import parse_calls
from tests.api.conftest import DELAY, ENDED_AT, NOW, parse_time, stored_requests

ENDED = ENDED_AT.isoformat()


def enqueue(cli, *extra: str, phone: str = "+14155550123", source_call_id: str = "crm-1"):
    return cli("enqueue", "--phone", phone, "--source-call-id", source_call_id, *extra)


# -- enqueue ----------------------------------------------------------------------------


def test_enqueue_accepts_a_call_and_prints_its_request_and_call_time(runtime, cli):
    result = enqueue(
        cli,
        "--agent", "alice", "--queue", "billing", "--team", "north", "--language", "es",
        "--ended-at", ENDED, "--survey", "post-call",
        "--metadata", "ticket=T-9", "--metadata", "note=a=b",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    match = re.fullmatch(r"accepted: request (\d+), first call planned for (\S+)\n", result.stdout)
    assert match, result.stdout
    planned = parse_time(match[2])
    assert planned >= ENDED_AT + DELAY

    row = stored_requests(runtime)["crm-1"]
    assert row.id == int(match[1])
    assert row.state is RequestState.SCHEDULED
    assert row.due_at == planned
    assert (row.agent, row.queue, row.team, row.language) == ("alice", "billing", "north", "es")
    assert row.extra == {"ticket": "T-9", "note": "a=b"}
    assert row.call_ended_at == ENDED_AT


def test_enqueue_without_ended_at_means_now(runtime, cli):
    assert enqueue(cli).exit_code == 0
    assert stored_requests(runtime)["crm-1"].call_ended_at == NOW


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--phone", "+1 415"], "invalid_phone"),
        (["--phone", "+19005550123"], "uncallable_phone"),
        (["--survey", "no-such-survey"], "unknown_survey"),
        (["--ended-at", "2026-11-23T14:58:00"], "invalid_field"),
        (["--ended-at", "yesterday"], "invalid_field"),
        (["--language", "english"], "invalid_field"),
        (["--source-call-id", " "], "invalid_field"),
    ],
)
def test_enqueue_prints_the_rejection_and_exits_1(runtime, cli, extra, reason):
    result = enqueue(cli, "--ended-at", ENDED, *extra)
    assert result.exit_code == 1
    assert result.stdout.startswith(f"rejected: {reason}: ")
    assert stored_requests(runtime) == {}


def test_enqueue_of_the_same_call_twice_is_a_duplicate(runtime, cli):
    assert enqueue(cli, "--ended-at", ENDED).exit_code == 0
    result = enqueue(cli, "--ended-at", ENDED, phone="+12125550123")
    assert result.exit_code == 1
    assert result.stdout.startswith("rejected: duplicate_source_call_id: ")
    assert list(stored_requests(runtime)) == ["crm-1"]


def test_a_suppressed_call_names_its_stored_request(runtime, cli):
    assert enqueue(cli, "--ended-at", ENDED).exit_code == 0
    result = enqueue(cli, "--ended-at", ENDED, source_call_id="crm-2")
    assert result.exit_code == 1
    row = stored_requests(runtime)["crm-2"]
    assert result.stdout == (
        "rejected: survey_under_way: a survey for this number is already scheduled "
        f"(stored as request {row.id})\n"
    )


@pytest.mark.parametrize("pair", ["ticket", "=T-9", " =T-9"])
def test_enqueue_refuses_malformed_metadata_as_a_usage_error(runtime, cli, pair):
    result = enqueue(cli, "--metadata", pair)
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output
    assert stored_requests(runtime) == {}


# -- import -----------------------------------------------------------------------------

GOOD_AND_BAD = f"""\
phone,source_call_id,agent,queue,team,language,ended_at,survey,Ticket
+14155550101,crm-1,alice,billing,north,en,{ENDED},,T-1
+1 415,crm-2,alice,billing,north,en,{ENDED},,T-2

+14155550103,crm-3,bob,billing,north,en,yesterday,,T-3
+14155550104,crm-4,bob
,crm-5,bob,billing,north,en,{ENDED},,T-5
"+1 (212) 555-0106",crm-6,carol,"sales, east",south,es,{ENDED},,"multi
line"
+14155550107,crm-1,dan,billing,north,en,{ENDED},,T-7
+14155550108,crm-8,erin,billing,north,en,{ENDED},no-such-survey,T-8
+14155550109,crm-9,erin,billing,north,en,{ENDED},post-call,
"""


def write(tmp_path, text: str | bytes, name: str = "calls.csv"):
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return str(path)


def test_import_reports_bad_rows_by_line_and_stores_only_good_ones(runtime, cli, tmp_path):
    result = cli("import", write(tmp_path, GOOD_AND_BAD))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rejected = [line for line in lines if line.startswith("line ")]
    assert [line.split(":")[:2] for line in rejected] == [
        ["line 3", " invalid_phone"],
        ["line 5", " invalid_field"],
        ["line 6", " invalid_field"],
        ["line 7", " invalid_field"],
        ["line 10", " duplicate_source_call_id"],
        ["line 11", " unknown_survey"],
    ]
    assert "ended_at 'yesterday'" in rejected[1]
    assert "expected 9 columns, found 3" in rejected[2]
    assert "phone is missing" in rejected[3]
    assert "calls.csv: 9 rows, 3 accepted, 6 rejected" in lines
    summary = {
        parts[0]: int(parts[1])
        for parts in (line.split() for line in lines if line.startswith("  "))
    }
    assert summary == {
        "invalid_field": 3,
        "invalid_phone": 1,
        "duplicate_source_call_id": 1,
        "unknown_survey": 1,
    }

    rows = stored_requests(runtime)
    assert set(rows) == {"crm-1", "crm-6", "crm-9"}
    assert rows["crm-1"].agent == "alice"  # not line 10's duplicate
    assert rows["crm-1"].extra == {"Ticket": "T-1"}
    assert rows["crm-6"].phone == "+12125550106"
    assert (rows["crm-6"].queue, rows["crm-6"].language) == ("sales, east", "es")
    assert rows["crm-6"].extra == {"Ticket": "multi\nline"}
    assert rows["crm-9"].extra == {}  # empty cells are not metadata
    for row in rows.values():
        assert row.state is RequestState.SCHEDULED
        assert row.due_at >= ENDED_AT + DELAY


def test_importing_the_same_file_again_stores_nothing_new(runtime, cli, tmp_path):
    path = write(tmp_path, GOOD_AND_BAD)
    cli("import", path)
    result = cli("import", path)
    assert result.exit_code == 0
    assert "calls.csv: 9 rows, 0 accepted, 9 rejected" in result.stdout
    assert set(stored_requests(runtime)) == {"crm-1", "crm-6", "crm-9"}


@pytest.mark.parametrize("bom", ["", "\N{BYTE ORDER MARK}"], ids=["plain", "bom"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_import_reads_utf8_with_or_without_a_byte_order_mark(runtime, cli, tmp_path, bom, newline):
    # Excel's "CSV UTF-8" starts with a BOM, which would otherwise stick to the first
    # column's name; header names match whatever their case.
    text = bom + newline.join(
        ["Phone,Source_Call_ID,ended_at,agent", f"+14155550101,crm-1,{ENDED},Élodie", ""]
    )
    result = cli("import", write(tmp_path, text.encode("utf-8")))
    assert result.exit_code == 0, result.output
    assert "1 rows, 1 accepted, 0 rejected" in result.stdout
    assert stored_requests(runtime)["crm-1"].agent == "Élodie"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (
            b"source_call_id,ended_at\ncrm-1,2026-11-23T14:58:00Z\n",
            "missing required column(s): phone",
        ),
        (b"phone;source_call_id;ended_at\n", "missing required column(s): phone, source_call_id"),
        (b"agent,queue\nalice,billing\n", "phone, source_call_id, ended_at"),
        (b"phone,phone,source_call_id,ended_at\n", "more than once: phone"),
        (b"phone,source_call_id,ended_at\n\xff\xfe,crm-1,x\n", "not UTF-8"),
        (b"\xff\xfep\x00h\x00o\x00n\x00e\x00", "not UTF-8"),
    ],
)
def test_an_unusable_file_exits_2_and_stores_nothing(runtime, cli, tmp_path, content, message):
    result = cli("import", write(tmp_path, content))
    assert result.exit_code == 2
    assert message in result.stderr
    assert stored_requests(runtime) == {}


def test_a_missing_file_exits_2(cli, tmp_path):
    result = cli("import", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_a_header_only_file_imports_nothing(runtime, cli, tmp_path):
    result = cli("import", write(tmp_path, "phone,source_call_id,ended_at\n"))
    assert result.exit_code == 0
    assert "calls.csv: 0 rows, 0 accepted, 0 rejected" in result.stdout


# -- the CSV reader and chunked import, without the CLI ---------------------------------


def test_rows_know_the_line_they_start_on():
    text = 'phone,source_call_id,ended_at,note\n\n"+1415\n5550101",a,x,"one\ntwo"\n\n+1,b,x,\n'
    rows = list(parse_calls(text))
    assert [row.line for row in rows] == [3, 7]


def test_import_goes_in_chunks_and_reports_progress(runtime):
    from dialer.csv_import import import_calls

    text = "phone,source_call_id,ended_at\n" + "".join(
        f"+1415555{n:04d},crm-{n},{ENDED}\n" for n in range(101, 106)
    )
    text += f"+1 415,crm-bad,{ENDED}\n+14155550199,crm-101,{ENDED}\n"
    progress: list[int] = []
    report = import_calls(runtime, parse_calls(text), chunk_rows=2, progress=progress.append)
    assert progress == [2, 2, 2, 1]
    assert report.accepted == 5
    assert report.rejections == {"invalid_phone": 1, "duplicate_source_call_id": 1}
    assert [row.line for row in report.rejected_rows] == [7, 8]
    assert len(stored_requests(runtime)) == 5


# -- big files: streamed, counted, nothing kept per accepted row ------------------------


def test_a_file_is_counted_for_the_progress_bar_before_it_is_read(tmp_path):
    from dialer.csv_import import read_calls_file

    path = tmp_path / "calls.csv"
    path.write_text(
        f"phone,source_call_id,ended_at\n+14155550101,a,{ENDED}\n\n,,\n+14155550102,b,{ENDED}\n",
        encoding="utf-8",
    )
    calls_file = read_calls_file(path)
    assert len(calls_file) == 2  # blank lines and rows of empty cells are not rows
    assert [row.call.source_call_id for row in calls_file] == ["a", "b"]
    assert [row.call.source_call_id for row in calls_file] == ["a", "b"]  # read again


def test_a_bad_byte_deep_in_a_big_file_refuses_it_before_any_row_is_stored(runtime, cli, tmp_path):
    rows = "".join(f"+1415555{n % 10_000:04d},crm-{n},{ENDED}\n" for n in range(3000))
    path = tmp_path / "calls.csv"
    path.write_bytes(b"phone,source_call_id,ended_at\n" + rows.encode() + b"\xff,crm-x,x\n")
    result = cli("import", str(path))
    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr
    assert stored_requests(runtime) == {}


def test_the_report_keeps_only_the_rows_that_were_not_accepted(runtime):
    from dialer.csv_import import import_calls

    text = "phone,source_call_id,ended_at\n" + "".join(
        f"+1415555{n:04d},crm-{n},{ENDED}\n" for n in range(200)
    )
    report = import_calls(runtime, parse_calls(text + f"nope,crm-bad,{ENDED}\n"))
    assert (report.total, report.accepted) == (201, 200)
    assert [row.result.source_call_id for row in report.rejected_rows] == ["crm-bad"]


def test_rejects_writes_every_rejected_row_and_the_terminal_lists_the_first(
    runtime, cli, tmp_path, monkeypatch
):
    from dialer import csv_import

    monkeypatch.setattr(csv_import, "LISTED_REJECTIONS", 2)
    text = (
        "phone,source_call_id,ended_at\n"
        + f"+14155550101,crm-ok,{ENDED}\n"
        + "".join(f"nope,crm-{n},{ENDED}\n" for n in range(5))
    )
    path = tmp_path / "calls.csv"
    path.write_text(text, encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    result = cli("import", str(path), "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    listed = [line for line in result.stdout.splitlines() if line.startswith("line ")]
    assert listed[0].startswith("line 3: invalid_phone") and len(listed) == 2
    assert f"... and 3 more rejected rows (all are in {rejects})" in result.stdout
    assert "calls.csv: 6 rows, 1 accepted, 5 rejected" in result.stdout
    written = list(csv.reader(rejects.open(encoding="utf-8")))
    assert written[0] == ["line", "source_call_id", "reason", "detail"]
    assert [row[:3] for row in written[1:]] == [
        [str(line), f"crm-{n}", "invalid_phone"] for n, line in enumerate(range(3, 8))
    ]
