"""Schemathesis against docs/openapi.yaml: generated requests, real HTTP, every check.

Every operation, every built-in check, schema-valid and schema-breaking data: no 500s,
documented status codes, content types and headers only, bodies that match the spec,
data the schema forbids refused, data it allows accepted. The Twilio Flex receiver's
generated forms are signed as TaskRouter would sign them, so its answer to the form is
tested, not only its refusal of an unsigned post.

What a schema cannot say is stated once, in `_refusal_the_spec_describes`, from the
spec's own descriptions: rules between report parameters (since before until, 5,000
periods at most, compare's needs), a platform event whose fields the deployment's
mapping cannot use (422), and a Genesys conversation event without its id (400). Such a
case must get exactly that refusal; every other check still runs on it. `test_the_api_conforms_to_its_spec_at_length` runs the same with many
more examples; it is marked `fuzz`, left out by default (run it with `-m fuzz`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.specs.openapi.checks import positive_data_acceptance
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from core import apikeys
from phonesim import BackgroundServer
from scoring.buckets import UNITS, TooManyBuckets, buckets
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL
from tests.openapi import SPEC_PATH

FLEX = "/api/v1/events/twilio-flex"
GENESYS = "/api/v1/events/genesys-cloud"
EVENTBRIDGE = ("/api/v1/events/amazon-connect", GENESYS)
SCORES = "/api/v1/reports/scores"
DETRACTORS = "/api/v1/reports/detractors"
FIRST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)  # the first day a report covers, in UTC
UTC_ZONE = ZoneInfo("UTC")  # REPORT_TIME_ZONE in the tests

schema = schemathesis.openapi.from_path(
    SPEC_PATH,
    config=SchemathesisConfig.from_dict(
        {
            # The bearer key is added to every request below; generating (and "breaking")
            # the Authorization header as if it were data would fight that. Auth has its
            # own tests, and `ignored_auth` still checks that a request without it is 401.
            "generation": {"with-security-parameters": False},
            # 413 is a refusal too: a batch over its 1,000 items (the spec's maxItems).
            "checks": {
                "negative_data_rejection": {
                    "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
                }
            },
        }
    ),
)


@pytest.fixture
def live_api(runtime, app):
    runtime.settings = runtime.settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    with runtime.db.session() as session:
        key = apikeys.create_key(session, "schemathesis", ["intake", "reports:full"])
    server = BackgroundServer(app).start()
    yield server.base_url, {"Authorization": f"Bearer {key}"}
    server.stop()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_conforms_to_its_spec(case, live_api):
    call_and_validate(case, *live_api)


@pytest.mark.fuzz
@schema.parametrize()
@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_conforms_to_its_spec_at_length(case, live_api):
    call_and_validate(case, *live_api)


def call_and_validate(case, base_url: str, auth: dict[str, str]) -> None:
    if case.path == FLEX and "X-Twilio-Signature" in (case.headers or {}):
        _sign_as_taskrouter(case, base_url)
    response = case.call(base_url=base_url, headers=auth)
    excluded = []
    expected = _refusal_the_spec_describes(case, response)
    if expected is not None:
        status, codes = expected
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] in codes, response.text
        excluded.append(positive_data_acceptance)
    case.validate_response(
        response,
        excluded_checks=excluded,
        headers=auth,
        transport_kwargs={"base_url": base_url, "headers": auth},
    )


def _sign_as_taskrouter(case, base_url: str) -> None:
    """Put in X-Twilio-Signature what TaskRouter would send: the signature over
    PUBLIC_BASE_URL and the form exactly as it will be encoded. A case without the header
    (the spec's missing-header check) is left without it."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        data=kwargs.get("data"),
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
    ).prepare()
    body = prepared.body or ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    form = MultiDict(parse_qsl(text, keep_blank_values=True))
    query = prepared.path_url.partition("?")[2]
    url = PUBLIC_BASE_URL + FLEX + (f"?{query}" if query else "")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    case.headers = {**(case.headers or {}), "X-Twilio-Signature": signature}


def _refusal_the_spec_describes(case, response) -> tuple[int, set[str]] | None:
    """The status and error codes the spec's descriptions promise for this case where its
    schemas cannot, or None where the schemas say it all."""
    if case.path in EVENTBRIDGE and response.status_code == 422:
        # A well-formed event the deployment's mapping cannot use (the customer's number
        # is not where RECEIVERS_FILE looks, a time outside 2000-2099, ...).
        return 422, {"unmapped_field", "invalid_field"}
    if case.path == GENESYS and _error_code(response) == "invalid_event":
        # A conversation event without eventBody.conversationId (or no `detail` object):
        # GenesysDetailEvent requires it, the catch-all EventBridgeEvent cannot.
        return 400, {"invalid_event"}
    if case.path not in (SCORES, DETRACTORS) or case.method.upper() != "GET":
        return None
    query = case.query or {}
    if _breaks_a_report_rule(query, case.path) or _data_span_too_long(query, response):
        return 400, {"invalid_query"}
    return None


def _error_code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def _breaks_a_report_rule(query: dict, path: str) -> bool:
    since = _moment(query.get("since"), end_of_day=False)
    until = _moment(query.get("until"), end_of_day=True)
    if since and until and since >= until:
        return True
    if path != SCORES:
        return False
    by = [name.strip(" ") for name in str(query.get("by") or "").split(",")]
    unit = next((name for name in by if name in UNITS), None)
    if unit and since and until and _too_many_periods(since, until, unit):
        return True
    if query.get("compare") == "team" and "agent" not in by:
        return True
    if query.get("compare") == "previous":
        if not (since and until):
            return True
        previous = since - (until - since)
        if previous < FIRST_INSTANT or (unit and _too_many_periods(previous, since, unit)):
            return True
    return False


def _data_span_too_long(query: dict, response) -> bool:
    """Grouping by a unit without both bounds spans the data's own first to last call:
    more than 5,000 periods of it is the documented 400, whatever the data is."""
    by = str(query.get("by") or "")
    open_range = not (query.get("since") and query.get("until"))
    return (
        response.status_code == 400
        and open_range
        and any(unit in by for unit in UNITS)
        and "5,000" in response.json()["error"]["message"]
    )


def _moment(value: object, *, end_of_day: bool) -> datetime | None:
    """A since/until the schema allows, as the spec describes it (REPORT_TIME_ZONE is UTC
    here); None when absent or not schema-valid (the schema then speaks for itself)."""
    if not isinstance(value, str):
        return None
    try:
        if "T" in value:
            return datetime.fromisoformat(value)
        day = date.fromisoformat(value) + timedelta(days=1 if end_of_day else 0)
    except ValueError:
        return None
    return datetime.combine(day, time(0), tzinfo=UTC)


def _too_many_periods(since: datetime, until: datetime, unit: str) -> bool:
    try:
        buckets(since, until, unit, UTC_ZONE)
    except TooManyBuckets:
        return True
    return False
