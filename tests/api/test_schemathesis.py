"""Schemathesis against docs/openapi.yaml: generated requests, real HTTP, every check.

No 500s, documented status codes and content types only, bodies that match the spec,
invalid input refused. One check is left out: "a schema-valid request is accepted".
The spec cannot say that compare=previous needs since and until, or which words `by`
takes, so a request can fit the schema and still be a 400 with a reason, rightly.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from core import apikeys
from phonesim import BackgroundServer
from tests.openapi import SPEC_PATH

# The bearer key is added to every request below; generating (and "breaking") the
# Authorization header as if it were data would fight that. Auth has its own tests.
schema = schemathesis.openapi.from_path(
    SPEC_PATH,
    config=SchemathesisConfig.from_dict({"generation": {"with-security-parameters": False}}),
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
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_conforms_to_its_spec(case, live_api):
    base_url, auth = live_api
    case.call_and_validate(
        base_url=base_url, headers=auth, excluded_checks=[positive_data_acceptance]
    )
