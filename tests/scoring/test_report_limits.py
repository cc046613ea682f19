"""Report queries past a limit: a 400 on the API, a usage error on the CLI, never a 500.

Each bad query names the limit it broke, and the parameter the way its caller spells it:
`since: ...` in the API's invalid_query message, `'--since'` on the command line (the
same validation, scoring.filters, serves both). The last tests hold docs/openapi.yaml to
the parser: the spec's patterns are the code's, and what the spec's schema allows is
exactly what the parser accepts.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from aftercall.cli import main
from core import apikeys
from scoring import filters
from scoring.report import CHANNELS, MODES, ReportError
from tests.openapi import check_response, spec

SCORES = "/api/v1/reports/scores"
DETRACTORS = "/api/v1/reports/detractors"

# (query, the parameter at fault, what the message must say of the limit)
BAD_QUERIES = [
    pytest.param({"since": "2000-01-01", "until": "2026-11-30", "by": "day"}, "by", "5,000 days",
                 id="9,831 days by day"),
    pytest.param({"since": "2000-01-01", "until": "2099-12-31", "by": "week"}, "by", "5,000 weeks",
                 id="a century by week"),
    pytest.param({"until": "9999-12-31"}, "until", "2099-12-31", id="the calendar's last day"),
    pytest.param({"until": "9999-12-31T23:59:59-14:00"}, "until", "2099-12-31",
                 id="the calendar's last moment, west of UTC"),
    pytest.param({"since": "0001-01-01T00:00:00+14:00"}, "since", "2000-01-01",
                 id="the calendar's first moment, east of UTC"),
    pytest.param({"since": "0001-01-01"}, "since", "2000-01-01", id="the calendar's first day"),
    pytest.param({"since": "1999-12-31"}, "since", "2000-01-01", id="the day before the first"),
    pytest.param({"until": "2100-01-01"}, "until", "2099-12-31", id="the day after the last"),
    pytest.param({"since": "2000-01-02", "until": "2000-01-05", "compare": "previous"}, "compare",
                 "2000-01-01", id="a previous period before the first day"),
    pytest.param({"since": "2000-01-01", "until": "2099-12-31", "compare": "previous"}, "compare",
                 "2000-01-01", id="a previous century"),
    pytest.param({"compare": "previous"}, "compare", "since and until",
                 id="a previous period of an open range"),
    pytest.param({"by": "meta:" + "k" * 196}, "by", "200 characters", id="a long by"),
    pytest.param({"by": "meta:ticket\x00"}, "by", "NUL", id="NUL in a metadata key"),
    pytest.param({"agent": "a" * 201}, "agent", "200 characters", id="a long filter"),
    pytest.param({"since": "2026-03-05", "until": "2026-03-01"}, "since", "before until",
                 id="since after until"),
]  # fmt: skip

BAD_PAGES = [
    pytest.param({"limit": "0"}, "limit", "1 to 500", id="limit 0"),
    pytest.param({"limit": "501"}, "limit", "1 to 500", id="limit 501"),
    pytest.param({"limit": "9" * 30}, "limit", "1 to 500", id="a huge limit"),
    pytest.param({"limit": "²"}, "limit", "1 to 500", id="a superscript digit"),
    pytest.param({"offset": "10000001"}, "offset", "0 to 10,000,000", id="offset past the limit"),
    pytest.param({"offset": "9" * 5000}, "offset", "0 to 10,000,000", id="5,000 digits"),
    pytest.param({"offset": "٣"}, "offset", "0 to 10,000,000", id="an Arabic-Indic digit"),
    pytest.param({"offset": "-1"}, "offset", "0 to 10,000,000", id="a negative offset"),
    pytest.param({"until": "9999-12-31"}, "until", "2099-12-31", id="the calendar's last day"),
    pytest.param({"since": "0001-01-01T00:00:00+14:00"}, "since", "2000-01-01",
                 id="the calendar's first moment"),
]  # fmt: skip


@pytest.fixture
def auth(runtime) -> dict[str, str]:
    with runtime.db.session() as session:
        return {"Authorization": f"Bearer {apikeys.create_key(session, 'bi', ['reports'])}"}


def get(client, auth, path: str, query: dict[str, str]):
    response = client.get(f"{path}?{urlencode(query)}", headers=auth)
    body = response.get_json()
    check_response(path, "GET", response.status_code, body)
    return response.status_code, body


def assert_names_the_limit(status: int, body: dict, parameter: str, limit: str) -> None:
    assert status == 400
    assert body["error"]["code"] == "invalid_query"
    message = body["error"]["message"]
    assert message.startswith(f"{parameter}: "), message
    assert limit in message, message
    assert "--" not in message, "an HTTP answer names the query parameter, not a CLI flag"


@pytest.mark.parametrize(("query", "parameter", "limit"), BAD_QUERIES)
def test_the_scores_api_names_the_limit(client, auth, query, parameter, limit):
    assert_names_the_limit(*get(client, auth, SCORES, query), parameter, limit)


@pytest.mark.parametrize(
    ("query", "parameter", "limit"),
    [
        *BAD_PAGES,
        *(case for case in BAD_QUERIES if "by" not in case.values[0]
          and "compare" not in case.values[0]),
    ],
)  # fmt: skip
def test_the_detractors_api_names_the_limit(client, auth, query, parameter, limit):
    assert_names_the_limit(*get(client, auth, DETRACTORS, query), parameter, limit)


@pytest.mark.parametrize(("query", "parameter", "limit"), BAD_QUERIES)
def test_the_report_command_names_the_limit(runtime, monkeypatch, query, parameter, limit):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    args = ["report"]
    for name, value in query.items():
        args += [f"--{name}", value]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output  # a usage error, not a traceback
    assert f"'--{parameter}'" in result.output, result.output
    assert limit in result.output, result.output


LAST_DAY_OF_5000 = (date(2000, 1, 1) + timedelta(days=4999)).isoformat()


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2000-01-01", "until": LAST_DAY_OF_5000, "by": "day"},
        {"since": "2000-01-01", "until": "2099-12-31", "by": "month"},
        {"since": "2000-01-01T00:00:00+14:00", "until": "2099-12-31T23:59:59-14:00"},
        {"since": "2000-01-08", "until": "2000-01-14", "compare": "previous"},
        {"since": "2099-12-01", "until": "2099-12-31", "compare": "previous", "by": "day"},
        {"by": " agent , week ", "agent": "  "},
    ],
    ids=["5,000 days", "a century by month", "the last moments", "a previous period from the "
         "first day", "the last month", "spaces and a blank filter"],
)  # fmt: skip
def test_queries_at_the_limits_are_answered(client, auth, query):
    status, body = get(client, auth, SCORES, query)
    assert status == 200, body


def test_until_the_last_day_includes_it(client, auth):
    status, body = get(client, auth, SCORES, {"until": "2099-12-31"})
    assert (status, body["query"]["until"]) == (200, "2100-01-01T00:00:00Z")


def test_a_page_at_the_limits_is_answered(client, auth):
    status, body = get(client, auth, DETRACTORS, {"limit": "500", "offset": "10000000"})
    assert (status, body["limit"], body["offset"]) == (200, 500, 10_000_000)


# -- the spec and the parser agree -----------------------------------------------------


def _schema(name: str) -> dict:
    return spec()["components"]["schemas"][name]


def test_the_spec_uses_the_parsers_patterns():
    parameters = spec()["components"]["parameters"]
    assert parameters["by"]["schema"]["pattern"] == filters.BY_PATTERN
    assert parameters["by"]["schema"]["maxLength"] == filters.MAX_FILTER_LENGTH
    moment = [branch["pattern"] for branch in _schema("ReportMoment")["anyOf"]]
    assert moment == [filters.DATE_PATTERN, filters.DATE_TIME_PATTERN]
    assert _schema("ReportFilter")["pattern"] == filters.FILTER_PATTERN
    assert _schema("ReportFilter")["maxLength"] == filters.MAX_FILTER_LENGTH
    assert parameters["mode"]["schema"]["enum"] == list(MODES)
    assert parameters["channel"]["schema"]["enum"] == list(CHANNELS)
    row = _schema("ReportRow")["properties"]
    assert row["mode"]["enum"] == list(MODES)
    assert row["channel"]["enum"] == list(CHANNELS)
    assert {"texted", "undelivered", "no_reply"} <= set(_schema("ReportRow")["required"])
    assert set(filters.FILTERS) == {
        ref["$ref"].rsplit("/", 1)[-1]
        for ref in spec()["paths"][SCORES]["get"]["parameters"]
        if "$ref" in ref
    } - {"by", "since", "until"}


def _accepts(parse, *args, **kwargs) -> bool:
    try:
        parse(*args, **kwargs)
    except ReportError:
        return False
    return True


BY_WORDS = ["agent", "queue", "team", "mode", "channel", "day", "week", "month", "meta:",
            "ticket", "Agent", "modes", "channels", ",", " ", "\t", "\x00", ":"]  # fmt: skip


@given(st.lists(st.sampled_from(BY_WORDS), max_size=8).map("".join))
def test_by_is_accepted_exactly_when_the_spec_allows_it(text):
    allowed = re.fullmatch(filters.BY_PATTERN, text) is not None
    assert _accepts(filters.parse_by, text) == allowed


MOMENT = Draft202012Validator(
    _schema("ReportMoment"), format_checker=Draft202012Validator.FORMAT_CHECKER
)


@st.composite
def moments(draw) -> str:
    """Dates and date-times around the spec's edges: years 1999 to 2100, days to 31,
    hours to 24, seconds to 60, offsets to 24 hours, in upper and lower case."""
    year = draw(st.sampled_from([1999, 2000, 2026, 2099, 2100, 9999]))
    text = f"{year:04d}-{draw(st.integers(1, 13)):02d}-{draw(st.integers(0, 32)):02d}"
    if draw(st.booleans()):
        hour, minute, second = (
            draw(st.integers(0, 24)),
            draw(st.integers(0, 60)),
            draw(st.integers(0, 60)),
        )
        fraction = draw(st.sampled_from(["", ".5", ".123456", ".123456789", ".1234567890"]))
        offset = draw(
            st.sampled_from(["Z", "z", "+00:00", "-14:00", "+23:59", "+24:00", "", "-0800"])
        )
        separator = draw(st.sampled_from(["T", "t", " "]))
        text += f"{separator}{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"
    return text


@given(moments())
def test_since_is_accepted_exactly_when_the_spec_allows_it(text):
    accepted = _accepts(filters.parse_moment, text, "since", ZoneInfo("UTC"), end_of_day=True)
    assert accepted == MOMENT.is_valid(text)
