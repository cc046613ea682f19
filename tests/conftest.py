"""Shared fixtures: a migrated database on each backend, the app, signed Twilio posts.

Every test that takes `runtime` (or anything built on it) runs twice: on SQLite and on
PostgreSQL. The PostgreSQL server is the one `AFTERCALL_TEST_DATABASE_URL` names (CI
starts one); without it those runs are skipped locally and fail in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, text
from twilio.request_validator import RequestValidator

from aftercall.web import create_app
from aftercall.wiring import PROCESS_WIRING
from core import migrate
from core.config import Settings
from core.db import Database
from core.models import (
    Base,
    CallAttempt,
    RequestState,
    SurveyRequest,
    report_daily,
    report_daily_delta,
    report_daily_teams,
)
from core.runtime import Runtime
from core.survey import SurveyCatalog
from core.survey_versions import version_for
from scoring import rollup

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
PUBLIC_BASE_URL = "https://surveys.example.test"
FROM_NUMBER = "+15005550006"


def pytest_configure(config: pytest.Config) -> None:
    _servers_of_this_worker()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Under pytest-xdist the chaos tests run one after another on one worker: each starts
    # a deployment of its own (web, workers, scheduler, proxies) and times its failures.
    for item in items:
        if item.get_closest_marker("chaos"):
            item.add_marker(pytest.mark.xdist_group("chaos"))


def _servers_of_this_worker() -> None:
    """Under pytest-xdist (`-n`, as the README's test command runs the suite), each worker
    process gets a PostgreSQL database and a Redis database number of its own, derived
    from the ones the environment names: the tests reset, migrate and flush them freely,
    as they do when they run alone. Everything that reads the two variables (fixtures,
    the Procfile and migration tests) then sees this worker's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    number = int(worker.removeprefix("gw"))
    database = os.environ.get("AFTERCALL_TEST_DATABASE_URL")
    if database:
        url = make_url(database)
        own = url.set(database=f"{url.database}_{worker}")
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": own.database}
            ).first()
            if exists is None:
                connection.execute(text(f'CREATE DATABASE "{own.database}"'))
        admin.dispose()
        os.environ["AFTERCALL_TEST_DATABASE_URL"] = own.render_as_string(hide_password=False)
    redis = os.environ.get("AFTERCALL_TEST_REDIS_URL")
    if redis:
        base, _, index = redis.rstrip("/").rpartition("/")
        if not index.isdigit():  # no database number given: Redis's 0
            base, index = redis.rstrip("/"), "0"
        # Redis has 16 numbered databases (0-15) unless configured otherwise.
        os.environ["AFTERCALL_TEST_REDIS_URL"] = f"{base}/{(int(index) + number) % 16}"


def _postgres_url() -> str:
    return _required_server("AFTERCALL_TEST_DATABASE_URL", "PostgreSQL")


def _required_server(variable: str, what: str) -> str:
    url = os.environ.get(variable, "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI must set {variable} to a {what} server")
        pytest.skip(f"set {variable} to run against {what}")
    return url


@pytest.fixture
def redis_url() -> str:
    """A real Redis server (CI starts one), emptied for each test."""
    from redis import Redis

    url = _required_server("AFTERCALL_TEST_REDIS_URL", "Redis")
    connection = Redis.from_url(url)
    connection.flushdb()
    connection.close()
    return url


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty database migrated with `alembic upgrade head`, once per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'aftercall.db'}"
    else:
        url = _postgres_url()
        _reset_postgres(url)
    migrate_for_tests(url)
    return url


def migrate_for_tests(url: str) -> None:
    """Migrate to head; reports in UTC then read the daily rollup, as production's would
    in its zone (as `aftercall db upgrade` builds it, on both databases)."""
    migrate.upgrade(url)
    db = Database(url)
    with db.session() as session:
        rollup.switch_on(session, ZoneInfo("UTC"))
    db.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        public_base_url=PUBLIC_BASE_URL,
        company_name="Acme Support",
        callback_number="+18005550100",
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    db = Database(settings.database_url)
    empty_tables(db)
    yield Runtime(
        wiring=PROCESS_WIRING,
        settings=settings,
        db=db,
        catalog=SurveyCatalog.from_directory(settings.surveys_dir),
    )
    db.dispose()


def empty_tables(db: Database) -> None:
    # The rollup last (deleting requests appends their negative figures to it), and its
    # setting kept: it is configuration, not data.
    rollup_tables = {"report_daily", "report_daily_teams", "report_daily_delta", "report_rollup",
                     "report_rollup_days"}  # fmt: skip
    with db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in rollup_tables:
                connection.execute(table.delete())
        for table in (report_daily_delta, report_daily, report_daily_teams):
            connection.execute(table.delete())


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sign(url: str, params: dict[str, str]) -> str:
    return RequestValidator(AUTH_TOKEN).compute_signature(url, params)


@pytest.fixture
def make_attempt(runtime: Runtime):
    """Create a survey request with one placed call attempt, as the dialer would."""

    def make(
        phone: str = "+14155550123",
        language: str = "en",
        survey: str = "post-call",
        call_sid: str | None = None,
        source_call_id: str | None = None,
        pinned: bool = False,
    ) -> CallAttempt:
        """`pinned`: the request's survey version pinned, as intake pins it; else the
        call's start webhook pins it (requests from before versions were pinned)."""
        with runtime.db.session() as session:
            count = session.query(SurveyRequest).count()
            request = SurveyRequest(
                phone=phone,
                source_call_id=source_call_id or f"support-call-{count + 1}",
                agent="alice",
                queue="billing",
                team="north",
                language=language,
                call_ended_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
                survey_name=survey,
                state=RequestState.CALLING,
            )
            if pinned:
                request.survey_version_id = version_for(session, runtime.catalog.get(survey)).id
            session.add(request)
            session.flush()
            attempt = CallAttempt(
                request_id=request.id,
                number=1,
                call_sid=call_sid or f"CA{request.id:032x}",
                status="queued",
            )
            session.add(attempt)
        return attempt

    make.counter = 0  # for callers that need distinct source call ids
    return make
