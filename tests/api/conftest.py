"""Fixtures for the intake API and CLI: a pinned clock, an API key, a CLI runner.

Intake plans calls inside the customer's calling hours, so its answers depend on the
clock. The dialer's clock (`Runtime.now`) is pinned to a Monday morning in the United
States, so accepted calls get a planned time on every day of the week the suite runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from aftercall.cli import intake as cli_intake
from aftercall.cli import main
from aftercall.wiring import runtime_from_settings
from core import apikeys
from core.models import SurveyRequest
from core.runtime import Runtime

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 New York, 07:00 San Francisco
ENDED_AT = NOW - timedelta(minutes=2)
DELAY = timedelta(minutes=5)  # the shipped survey's [dialing] delay_minutes
# Nothing listens on port 1: enqueueing fails at once, which intake logs and survives.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def runtime(runtime: Runtime) -> Runtime:
    runtime.settings = runtime.settings.with_overrides(redis_url=UNREACHABLE_REDIS)
    runtime.now = lambda: NOW
    return runtime


@pytest.fixture
def api_key(runtime: Runtime) -> str:
    with runtime.db.session() as session:
        return apikeys.create_key(session, "crm")


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def _pinned_runtime(settings: Any) -> Runtime:
    runtime = runtime_from_settings(settings)
    runtime.now = lambda: NOW
    return runtime


@pytest.fixture
def cli(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `aftercall ...` against the test database, on the pinned clock."""
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("REDIS_URL", UNREACHABLE_REDIS)
    for name in ("AFTERCALL_ENV", "SURVEYS_DIR", "DEFAULT_SURVEY", "DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli_intake, "runtime_from_settings", _pinned_runtime)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def stored_requests(runtime: Runtime) -> dict[str, SurveyRequest]:
    """Survey requests in the database by source call id."""
    with runtime.db.session() as session:
        rows = session.scalars(select(SurveyRequest)).all()
    return {row.source_call_id: row for row in rows}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
