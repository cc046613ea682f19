"""Fixtures for the chaos suite: a whole deployment on the wall clock that a test can
break. PostgreSQL only (the shared test server, through a proxy the test can cut), a
private redis-server per test (so it can be crashed), gunicorn serving the real app,
`rq worker --with-scheduler` processes, phonesim over HTTP with signatures checked.

Select the suite with `-m chaos`; it also runs in the default test command.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aftercall.wiring import PROCESS_WIRING
from core import migrate
from core.db import Database
from core.runtime import Runtime
from core.survey import SurveyCatalog
from phonesim import PersonaMix
from tests.chaos.harness import (
    SHARDS,
    SURVEY_TOML,
    Campaign,
    DatabaseProxy,
    Deployment,
    RedisServer,
    free_port,
    wait_until,
    web_is_up,
)
from tests.chaos.network import ShardedNetwork
from tests.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    _postgres_url,
    _reset_postgres,
    empty_tables,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: a deployment broken on purpose (workers killed, Redis, database)"
    )


@pytest.fixture(scope="session")
def database_url() -> str:
    """The PostgreSQL test database only: the chaos is about processes sharing a server."""
    url = _postgres_url()
    _reset_postgres(url)
    migrate.upgrade(url)
    return url


@pytest.fixture
def surveys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "surveys"
    directory.mkdir()
    (directory / "chaos.toml").write_text(SURVEY_TOML)
    return directory


@pytest.fixture
def launch(settings, surveys_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Campaign]]:
    """Start a deployment: `launch(workers=3, appendonly=False, proxy=False, mix=...,
    shards=SHARDS)`."""
    stack: list[Callable[[], None]] = []

    def start(
        workers: int = 3,
        *,
        appendonly: bool = False,
        proxy: bool = False,
        mix: PersonaMix | None = None,
        seed: int = 1,
        shards: int = SHARDS,
    ) -> Campaign:
        redis = RedisServer(tmp_path, appendonly=appendonly)
        redis.start()
        stack.append(redis.stop)
        database_url = settings.database_url
        db_proxy = None
        if proxy:
            db_proxy = DatabaseProxy()
            stack.append(db_proxy.close)
            database_url = db_proxy.url_for(database_url)
        network = ShardedNetwork(ACCOUNT_SID, AUTH_TOKEN, shards=shards, seed=seed, persona_mix=mix)
        network.start()
        stack.append(network.stop)
        web_port = free_port()
        base_url = f"http://127.0.0.1:{web_port}"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
            ),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_BASE": network.api_base,
            "PUBLIC_BASE_URL": base_url,
            "SURVEYS_DIR": str(surveys_dir),
            "DEFAULT_SURVEY": "chaos",
            "CALLS_PER_SECOND": "40",
            "MAX_CONCURRENT_CALLS": "500",
            "COMPANY_NAME": "Acme Support",
            "CALLBACK_NUMBER": "+18005550100",
        }
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        deployment = Deployment(env=env, redis_url=redis.url, logs=logs)
        stack.append(deployment.stop)
        deployment.start_web(web_port)
        wait_until(lambda: web_is_up(base_url), 30, "gunicorn to serve the app")
        deployment.start_workers(workers)
        runtime_settings = settings.with_overrides(
            redis_url=redis.url,
            surveys_dir=surveys_dir,
            twilio_api_base=network.api_base,
            public_base_url=base_url,
        )
        observer = Database(settings.database_url)
        stack.append(observer.dispose)
        empty_tables(observer)
        db = Database(database_url)  # the cron process, behind the proxy too
        stack.append(db.dispose)
        runtime = Runtime(
            wiring=PROCESS_WIRING,
            settings=runtime_settings,
            db=db,
            catalog=SurveyCatalog.from_directory(surveys_dir),
        )
        return Campaign(runtime, network, deployment, redis, observer, db_proxy)

    yield start
    for stop in reversed(stack):
        try:
            stop()
        except Exception as exc:  # keep tearing down the rest
            print(f"teardown: {type(exc).__name__}: {exc}")
