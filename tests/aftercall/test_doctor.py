"""`aftercall doctor` against real servers: phonesim for Twilio, the real Redis with the
Procfile's worker and cron processes, PostgreSQL and SQLite, the app on a live port.

A healthy setup has no FAIL; each broken part (wrong Twilio credentials, an account
suspended or closed, a from-number the account neither owns nor verified or that cannot
call, a database not migrated or in another report zone, Redis unreachable or without
workers, the public URL unreachable or signing differently) fails with a fix.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from redis import Redis
from rq import Worker
from rq.cron import CronScheduler
from rq.scheduler import RQScheduler
from sqlalchemy import create_engine, text

from aftercall import doctor
from aftercall.cli import main
from aftercall.demo import LateBoundApp
from aftercall.doctor import Finding, Status
from aftercall.web import create_app
from aftercall.wiring import PROCESS_WIRING
from core import migrate
from core.config import DEFAULT_SURVEYS_DIR, Settings
from core.models import User
from core.runtime import Runtime
from phonesim import BackgroundServer, PhoneNetwork
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, _required_server
from tests.test_procfile import free_port, procfile

# The newest migration, whatever it is numbered as the schema grows.
HEAD = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()


def statuses(findings: list[Finding], check: str | None = None) -> list[tuple[Status, str]]:
    return [(f.status, f.message) for f in findings if check is None or f.check == check]


def failures(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status is Status.FAIL]


def the_failure(findings: list[Finding], *words: str) -> Finding:
    """The one FAIL, whose message holds every word; it comes with a fix."""
    (failed,) = failures(findings)
    assert all(word in failed.message for word in words), failed
    assert failed.fix
    return failed


def unused_url(scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{free_port()}"


# -- servers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rq_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Redis with the Procfile's worker (calls, alerts, scheduler) and cron running."""
    url = _required_server("AFTERCALL_TEST_REDIS_URL", "Redis")
    connection = Redis.from_url(url)
    connection.flushdb()
    folder = tmp_path_factory.mktemp("rq")
    database_url = f"sqlite:///{folder / 'jobs.db'}"
    migrate.upgrade(database_url)  # the cron's jobs run against it, and must succeed
    env = {**os.environ, "REDIS_URL": url, "DATABASE_URL": database_url}
    processes = [start_process(procfile()[name], env, folder) for name in ("worker", "cron")]

    def ready() -> bool:
        return (
            len(Worker.all(connection=connection)) == 1
            and all(
                connection.exists(RQScheduler.get_locking_key(queue))
                for queue in ("calls", "messages", "alerts")
            )
            and len(CronScheduler.all(connection)) == 1
        )

    try:
        deadline = time.monotonic() + 45
        while not ready():
            for process in processes:
                if process.poll() is not None:
                    pytest.fail(f"rq did not start: {process.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("rq worker and cron did not register in 45 s")
            time.sleep(0.2)
        yield url
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=15)
        connection.close()


def start_process(command: str, env: dict[str, str], cwd) -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", "-c", f"exec {command}"], env=env, cwd=cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


@pytest.fixture
def empty_redis_url() -> Iterator[str]:
    """Another database of the same Redis server: no workers, no schedulers."""
    url = _required_server("AFTERCALL_TEST_REDIS_URL", "Redis")
    parts = urlsplit(url)
    number = (int(parts.path.strip("/") or 0) + 1) % 16
    other = urlunsplit(parts._replace(path=f"/{number}"))
    connection = Redis.from_url(other)
    connection.flushdb()
    yield other
    connection.flushdb()
    connection.close()


@pytest.fixture
def sim() -> Iterator[PhoneNetwork]:
    network = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN)
    network.start()
    yield network
    network.stop()


def serve(runtime: Runtime, settings: Settings) -> tuple[BackgroundServer, Settings]:
    """The app on a live port, PUBLIC_BASE_URL pointing at it, built with `settings`
    changed only by that address."""
    late = LateBoundApp()
    server = BackgroundServer(late).start()
    settings = settings.with_overrides(public_base_url=server.base_url)
    late.app = create_app(
        runtime=Runtime(
            wiring=PROCESS_WIRING, settings=settings, db=runtime.db, catalog=runtime.catalog
        )
    )
    return server, settings


@pytest.fixture
def deployment(
    runtime: Runtime, settings: Settings, rq_url: str, sim: PhoneNetwork
) -> Iterator[Settings]:
    """A healthy local deployment, on each database backend: its settings."""
    wanted = settings.with_overrides(redis_url=rq_url, twilio_api_base=sim.api_base)
    server, live = serve(runtime, wanted)
    yield live
    server.stop()


# -- a healthy setup ---------------------------------------------------------------------


def test_a_healthy_deployment_has_no_failure(deployment: Settings):
    findings = doctor.checks(deployment, timeout=5)

    assert failures(findings) == []
    assert (Status.OK, f"the schema is at the latest migration ({HEAD})") in statuses(findings)
    rollup = [message for _, message in statuses(findings, "database") if "rollup" in message]
    # On SQLite as on PostgreSQL (migration 0017).
    assert rollup == ["the daily report rollup is built in REPORT_TIME_ZONE (UTC)"]
    redis = statuses(findings, "redis")
    for queue in ("calls", "messages", "alerts"):
        assert any(s is Status.OK and f"worker(s) on the {queue!r} queue" in m for s, m in redis)
        assert (Status.OK, f"an rq scheduler runs the {queue!r} queue's scheduled jobs") in redis
        assert any(s is Status.OK and m.startswith(f"queue {queue!r}: ") for s, m in redis)
    assert any("cron scheduler is alive" in message for _, message in redis)
    twilio = statuses(findings, "twilio")
    assert twilio[:2] == [
        (Status.OK, "credentials accepted: account 'phonesim' is active"),
        (Status.OK, f"TWILIO_FROM_NUMBER {FROM_NUMBER} is a number of this account"),
    ]
    public = statuses(findings, "public url")
    assert (Status.OK, public[-1][1]) == public[-1]
    assert "signed with this TWILIO_AUTH_TOKEN" in public[-1][1]
    assert any(s is Status.OK and "/healthz: 200" in m for s, m in public)


def test_the_command_prints_each_check_and_the_webhook_urls(deployment: Settings):
    result = CliRunner().invoke(main, ["doctor", "--timeout", "5"], env=environment(deployment))

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for section in ("configuration", "surveys", "database", "redis", "twilio", "public url"):
        assert section in lines
    assert not [line for line in lines if line.strip().startswith("FAIL")]
    base = f"{deployment.public_base_url}/voice/attempts/<attempt id>"
    assert f"  {'call (Url)':<18} {base}/start" in lines
    assert f"  {'status callback':<18} {base}/status" in lines
    assert f"  {'machine detection':<18} {base}/amd" in lines
    assert lines[-1].startswith("0 failed, ")


def environment(settings: Settings) -> dict[str, str]:
    return {
        "AFTERCALL_ENV": "development",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        "TWILIO_FROM_NUMBER": settings.twilio_from_number,
        "TWILIO_API_BASE": settings.twilio_api_base,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "REPORT_TIME_ZONE": settings.report_time_zone,
        "SURVEYS_DIR": str(settings.surveys_dir),
        "DEFAULT_SURVEY": settings.default_survey,
        "ALERT_WEBHOOK_URL": "",
    }


# -- configuration -----------------------------------------------------------------------


def test_production_names_every_missing_setting_and_still_checks_the_rest():
    settings, findings = doctor.configuration(
        {"AFTERCALL_ENV": "production", "PUBLIC_BASE_URL": "http://surveys.example.com"}
    )

    assert settings is not None and settings.is_production
    missing, not_https = failures(findings)
    assert missing.message == (
        "missing for AFTERCALL_ENV=production: DATABASE_URL, REDIS_URL, TWILIO_ACCOUNT_SID, "
        "TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER, COMPANY_NAME, CALLBACK_NUMBER, SECRET_KEY"
    )
    assert "is not https://" in not_https.message


def test_a_complete_production_configuration_is_ok():
    environ = {
        "AFTERCALL_ENV": "production",
        "DATABASE_URL": "postgresql+psycopg://aftercall:s3cret@db.internal/aftercall",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "PUBLIC_BASE_URL": "https://surveys.example.com",
        "COMPANY_NAME": "Acme",
        "CALLBACK_NUMBER": "+18005550100",
        "SECRET_KEY": "k" * 40,
    }
    settings, findings = doctor.configuration(environ)

    assert statuses(findings) == [
        (Status.OK, "AFTERCALL_ENV=production: every required setting is set")
    ]
    assert settings is not None and settings.public_base_url == "https://surveys.example.com"


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"CALLS_PER_SECOND": "fast"}, "CALLS_PER_SECOND must be a number"),
        ({"REPORT_TIME_ZONE": "Mars/Olympus"}, "'Mars/Olympus' is not a known time zone"),
        ({"MAX_CONCURRENT_CALLS": "0"}, "MAX_CONCURRENT_CALLS must be greater than zero"),
    ],
)
def test_a_malformed_setting_stops_the_checks(environ, words):
    diagnosis = doctor.diagnose(environ)

    assert diagnosis.settings is None
    the_failure(diagnosis.findings, words)


def test_alerts_without_a_secret_and_an_unknown_environment_warn():
    _, findings = doctor.configuration(
        {"AFTERCALL_ENV": "prod", "ALERT_WEBHOOK_URL": "https://crm.example.com/hook"}
    )

    warned = [message for status, message in statuses(findings) if status is Status.WARN]
    assert len(warned) == 2
    assert "'prod' is neither" in warned[0]
    assert "detractor alerts are off" in warned[1]


def test_a_default_survey_that_does_not_exist_fails():
    the_failure(doctor.surveys(Settings(default_survey="after-sales")), "after-sales")


def test_the_connect_contact_events_default_mapping_is_known_not_to_find_a_number(tmp_path):
    # AWS's contact events carry no customer number: the default path is in no real event.
    [finding] = doctor.receivers(Settings())
    assert finding.status is Status.WARN and "contact-records" in finding.fix
    path = tmp_path / "receivers.toml"
    path.write_text('[amazon-connect]\nphone = "detail.tags.customer_number"\n')
    assert [f.status for f in doctor.receivers(Settings(receivers_file=path))] == [Status.OK]


def test_a_receivers_file_is_read_as_the_web_process_reads_it(tmp_path):
    path = tmp_path / "receivers.toml"
    path.write_text("[amazon-conect]\n")
    the_failure(doctor.receivers(Settings(receivers_file=path)), "unknown section", "amazon-conect")
    path.write_text("[twilio-flex]\n")
    read, connect = doctor.receivers(Settings(receivers_file=path))
    assert (read.status, connect.status) == (Status.OK, Status.WARN), read
    the_failure(doctor.receivers(Settings(receivers_file=tmp_path / "gone.toml")), "cannot be read")


# -- the database ------------------------------------------------------------------------


def test_a_missing_sqlite_file_fails_and_is_not_created(tmp_path):
    path = tmp_path / "nowhere.db"

    findings = doctor.database(Settings(database_url=f"sqlite:///{path}"))

    the_failure(findings, "no database file at", str(path))
    assert not path.exists()


def test_an_empty_sqlite_database_is_not_migrated(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()

    findings = doctor.database(Settings(database_url=f"sqlite:///{path}"))

    assert the_failure(findings, "empty").fix.startswith("run `aftercall db upgrade`")


def test_a_database_behind_the_latest_migration_fails(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0006")

    findings = doctor.database(Settings(database_url=url))

    the_failure(findings, f"the schema is at 0006; this release needs {HEAD}")


@pytest.fixture
def empty_postgres_schema() -> Iterator[str]:
    """An empty schema of the test PostgreSQL database, first on the search path."""
    url = _required_server("AFTERCALL_TEST_DATABASE_URL", "PostgreSQL")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS doctor_empty CASCADE"))
        connection.execute(text("CREATE SCHEMA doctor_empty"))
    separator = "&" if "?" in url else "?"
    yield f"{url}{separator}options=-csearch_path%3Ddoctor_empty"
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA doctor_empty CASCADE"))
    engine.dispose()


def test_an_empty_postgresql_database_is_not_migrated(empty_postgres_schema):
    findings = doctor.database(Settings(database_url=empty_postgres_schema))

    assert statuses(findings)[0][0] is Status.OK  # reachable
    the_failure(findings, "empty")


def test_a_rollup_built_in_another_zone_fails(settings: Settings):
    findings = doctor.database(settings.with_overrides(report_time_zone="America/New_York"))

    failed = the_failure(findings, "built in UTC", "REPORT_TIME_ZONE is America/New_York")
    assert "aftercall db upgrade" in failed.fix


def test_an_unreachable_postgresql_server_fails():
    url = f"postgresql+psycopg://aftercall:s3cret@127.0.0.1:{free_port()}/aftercall"

    findings = doctor.database(Settings(database_url=url), timeout=2)

    failed = the_failure(findings, "cannot use postgresql+psycopg://aftercall:***@127.0.0.1")
    assert "s3cret" not in failed.message


# -- Redis -------------------------------------------------------------------------------


def test_redis_unreachable_fails_fast():
    started = time.monotonic()

    findings = doctor.redis_queues(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"), 2)

    the_failure(findings, "cannot reach Redis")
    assert time.monotonic() - started < 5


def test_redis_without_workers_schedulers_or_cron_fails(empty_redis_url: str):
    from dialer.dispatch import PAUSE_KEY

    Redis.from_url(empty_redis_url).set(PAUSE_KEY, "Twilio refused the credentials")

    alerts_on = {"alert_webhook_url": "https://crm.example.com/hook", "alert_webhook_secret": "s"}
    findings = doctor.redis_queues(Settings(redis_url=empty_redis_url, **alerts_on))

    assert [f.message for f in failures(findings)] == [
        "no rq worker listens on the 'calls' queue",
        "no rq scheduler holds the 'calls' queue: scheduled survey calls and retries never run",
        "no rq worker listens on the 'alerts' queue",
        "no rq scheduler holds the 'alerts' queue: scheduled alert retries never run",
        "no rq cron scheduler is running: lost calls are not reconciled and the report "
        "rollup is not compacted",
    ]
    assert all(f.fix for f in failures(findings))
    assert (Status.WARN, "dialing is PAUSED: Twilio refused the credentials") in statuses(findings)


# -- Twilio ------------------------------------------------------------------------------


def twilio_settings(sim: PhoneNetwork, **changes) -> Settings:
    base = Settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        callback_number="+18005550100",
        twilio_api_base=sim.api_base,
    )
    return base.with_overrides(**changes)


def twilio_findings(sim: PhoneNetwork, timeout: float = 5, **changes) -> list[Finding]:
    return doctor.twilio_account(twilio_settings(sim, **changes), timeout=timeout)


@pytest.fixture
def bare_sim() -> Iterator[PhoneNetwork]:
    """An account that owns no number and has verified no caller ID."""
    network = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, numbers=[])
    network.start()
    yield network
    network.stop()


def test_an_active_account_owning_the_from_number_is_ok(sim: PhoneNetwork):
    findings = twilio_findings(sim)

    assert [status for status, _ in statuses(findings)] == [Status.OK] * 3
    assert findings[0].message == "credentials accepted: account 'phonesim' is active"
    assert findings[1].message == f"TWILIO_FROM_NUMBER {FROM_NUMBER} is a number of this account"
    # What the doctor asked: the account, then the number among the account's numbers.
    assert [exchange.path.rsplit("/", 1)[-1] for exchange in sim.journal.rest] == [
        f"{ACCOUNT_SID}.json",
        "IncomingPhoneNumbers.json",
    ]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"twilio_auth_token": "not-the-token"}, ("refused TWILIO_ACCOUNT_SID", ACCOUNT_SID)),
        ({"twilio_account_sid": "AC" + "9" * 32}, ("refused TWILIO_ACCOUNT_SID", "AC" + "9" * 32)),
    ],
    ids=["wrong token", "wrong account SID"],
)
def test_wrong_twilio_credentials_fail(sim: PhoneNetwork, changes, words):
    findings = twilio_findings(sim, **changes)

    failed = the_failure(findings, *words, "HTTP 401", "error 20003")
    assert "TWILIO_AUTH_TOKEN on every process" in failed.fix
    assert "aftercall dialer resume" in failed.fix
    assert len(findings) == 1  # nothing else can be asked with refused credentials


@pytest.mark.parametrize(
    ("status", "fix"),
    [("suspended", "reactivate it in the Twilio Console"), ("closed", "cannot be reopened")],
)
def test_an_account_that_is_not_active_fails(sim: PhoneNetwork, status, fix):
    sim.set_account_status(status)

    failed = the_failure(twilio_findings(sim), f"'phonesim' is {status}", "no call can be placed")

    assert fix in failed.fix


def test_an_account_twilio_refuses_as_not_active_fails_with_the_reactivation_fix(
    sim: PhoneNetwork,
):
    sim.inject_fault(401, path_contains=f"{ACCOUNT_SID}.json", code=20005)

    failed = the_failure(twilio_findings(sim), "is not active", "HTTP 401, error 20005")

    assert "reactivate it" in failed.fix


def test_a_trial_account_warns_of_its_limits():
    trial = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, account_type="Trial")
    trial.start()
    try:
        findings = twilio_findings(trial)
    finally:
        trial.stop()

    assert failures(findings) == []
    assert findings[1].status is Status.WARN
    assert "calls only verified numbers" in findings[1].message


def test_a_from_number_the_account_does_not_have_fails(bare_sim: PhoneNetwork):
    failed = the_failure(twilio_findings(bare_sim), "neither a number of this account", "21210")

    assert "buy a voice number" in failed.fix


def test_a_longer_number_that_contains_the_from_number_is_not_it(bare_sim: PhoneNetwork):
    # Twilio's PhoneNumber filter matches part of a number: this one is listed.
    bare_sim.account.add_number(FROM_NUMBER + "1")

    the_failure(twilio_findings(bare_sim), "neither a number of this account")


def test_a_verified_caller_id_is_a_usable_from_number(bare_sim: PhoneNetwork):
    bare_sim.account.verify_caller_id(FROM_NUMBER)

    findings = twilio_findings(bare_sim)

    assert failures(findings) == []
    assert "is a verified caller ID" in findings[1].message


def test_a_number_that_cannot_call_fails(sim: PhoneNetwork):
    sim.account.add_number(FROM_NUMBER, voice=False)

    failed = the_failure(twilio_findings(sim), "not voice-capable")

    assert "voice-capable number" in failed.fix


def test_a_callback_number_nobody_answers_warns(sim: PhoneNetwork):
    findings = twilio_findings(sim, callback_number=FROM_NUMBER)

    (warned,) = [f for f in findings if f.status is Status.WARN]
    assert "aftercall does not answer incoming calls" in warned.message
    assert "incoming-call webhook is nothing" in warned.message
    assert "CALLBACK_NUMBER" in warned.fix


def test_a_twilio_api_slower_than_the_timeout_fails_in_time(sim: PhoneNetwork):
    sim.slow_down(3, path_contains=f"{ACCOUNT_SID}.json")
    started = time.monotonic()

    findings = twilio_findings(sim, timeout=0.5)

    the_failure(findings, f"cannot reach {sim.api_base}", "timed out")
    assert time.monotonic() - started < 2.5


def test_a_number_lookup_that_fails_is_said_not_guessed(sim: PhoneNetwork):
    sim.slow_down(3, path_contains="IncomingPhoneNumbers")
    findings = twilio_findings(sim, timeout=0.5)
    sim.inject_fault(500, path_contains="IncomingPhoneNumbers")
    failing = twilio_findings(sim)

    for found, words in ((findings, "timed out"), (failing, "HTTP 500, error 20500")):
        assert failures(found) == []
        (warned,) = [f for f in found if f.status is Status.WARN]
        assert f"could not look up TWILIO_FROM_NUMBER {FROM_NUMBER}" in warned.message
        assert words in warned.message


def test_twilio_answering_with_a_server_error_fails(sim: PhoneNetwork):
    sim.inject_fault(503, path_contains=f"{ACCOUNT_SID}.json")

    (finding,) = twilio_findings(sim)

    assert finding.status is Status.FAIL
    assert finding.message.startswith(f"{sim.api_base} answered HTTP 503, error 20503")


def test_an_unreachable_twilio_api_fails():
    settings = Settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base=unused_url(),
    )

    the_failure(doctor.twilio_account(settings, timeout=2), "cannot reach http://127.0.0.1")


def test_a_from_number_not_in_e164_fails(sim: PhoneNetwork):
    findings = doctor.twilio_account(twilio_settings(sim, twilio_from_number="415 555 0100"))

    the_failure(findings, "'415 555 0100' is not a phone number in E.164")


def test_no_twilio_credentials_warn_in_development_and_fail_in_production():
    (finding,) = doctor.twilio_account(Settings())
    assert finding.status is Status.WARN

    (finding,) = doctor.twilio_account(Settings(env="production"))
    assert finding.status is Status.FAIL


# -- the public URL ----------------------------------------------------------------------


def test_an_unreachable_public_url_fails():
    url = unused_url()

    findings = doctor.public_url(Settings(public_base_url=url), timeout=2)

    the_failure(findings, f"GET {url}/healthz failed")
    assert {f.status for f in findings} == {Status.WARN, Status.FAIL}  # http, private host


def test_a_web_process_with_another_auth_token_fails_the_signature_check(
    runtime: Runtime, settings: Settings
):
    server, live = serve(runtime, settings)
    try:
        findings = doctor.public_url(live.with_overrides(twilio_auth_token="another-token"))
    finally:
        server.stop()

    failed = the_failure(findings, "refused a webhook signed with this TWILIO_AUTH_TOKEN")
    assert "behind a proxy" in failed.fix


def test_the_command_fails_with_exit_status_1(tmp_path):
    environ = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "PUBLIC_BASE_URL": unused_url(),
    }

    result = CliRunner().invoke(main, ["doctor", "--timeout", "1"], env=environ)

    assert result.exit_code == 1
    assert "  FAIL  no database file at" in result.output
    assert "        fix: run `aftercall db upgrade`" in result.output
    assert result.output.splitlines()[-1].startswith("3 failed, ")


def test_production_refuses_the_development_secret_and_warns_about_sqlite():
    environ = {
        name: "set"
        for name in ("REDIS_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "COMPANY_NAME")
    } | {
        "AFTERCALL_ENV": "production",
        "DATABASE_URL": "sqlite:///aftercall.db",
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "CALLBACK_NUMBER": FROM_NUMBER,
        "PUBLIC_BASE_URL": "https://surveys.example.com",
        "SECRET_KEY": Settings().secret_key,
    }

    _, findings = doctor.configuration(environ)

    assert [(f.status, f.message.split(":")[0]) for f in findings] == [
        (Status.FAIL, "SECRET_KEY is the public development value"),
        (Status.WARN, "DATABASE_URL is a SQLite file"),
    ]


def test_with_alerts_off_a_missing_alerts_worker_only_warns(empty_redis_url: str):
    findings = doctor.redis_queues(Settings(redis_url=empty_redis_url))

    alerts = [
        f.status
        for f in findings
        if "'alerts' queue:" in f.message
        or f.message.startswith("no rq worker listens on the 'alerts'")
    ]
    assert alerts == [Status.WARN, Status.WARN]
    assert len(failures(findings)) == 3  # calls: worker, scheduler; cron


# -- against the `aftercall phonesim` command --------------------------------------------


def phonesim_command(*options: str, from_number: str) -> tuple[subprocess.Popen, str, Settings]:
    """`aftercall phonesim` with the account settings of the environment, started; its
    numbers line, and the settings that point at it."""
    port = free_port()
    env = {
        **os.environ,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": from_number,
    }
    process = subprocess.Popen(
        ["aftercall", "phonesim", "--port", str(port), *options], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    listening = process.stdout.readline().decode()
    numbers = process.stdout.readline().decode().strip()
    assert "phonesim listening on" in listening, listening + process.stdout.read().decode()
    settings = Settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=from_number,
        callback_number="+18005550100",
        twilio_api_base=f"http://127.0.0.1:{port}",
    )
    return process, numbers, settings


@pytest.mark.parametrize(
    ("options", "outcome"),
    [
        ((), (Status.OK, "is a number of this account")),
        (("--caller-id", "+14155550199"), (Status.OK, "is a verified caller ID")),
        (("--account-status", "closed"), (Status.FAIL, "'phonesim' is closed")),
    ],
    ids=["owns TWILIO_FROM_NUMBER", "as a caller ID", "closed"],
)
def test_the_phonesim_command_answers_the_doctor_as_configured(options, outcome):
    process, numbers, settings = phonesim_command(*options, "--number", "+442071838750",
                                                  from_number="+14155550199")  # fmt: skip
    try:
        findings = doctor.twilio_account(settings, timeout=5)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=10)

    owned = numbers.removeprefix("numbers: ").split(", ")
    assert "+442071838750" in owned
    assert ("+14155550199" in owned) is ("--caller-id" not in options)
    status, words = outcome
    assert any(f.status is status and words in f.message for f in findings), findings
    if status is Status.OK:
        assert failures(findings) == []


@pytest.mark.parametrize("option", ["--number", "--caller-id"])
def test_the_phonesim_command_refuses_a_number_not_in_e164(option):
    result = CliRunner().invoke(main, ["phonesim", option, "415 555 0100"])

    assert result.exit_code == 2
    assert f"Invalid value for {option}: " in result.output
    assert "'415 555 0100' is not a phone number in E.164" in result.output


# -- the survey number (in-call surveys) -----------------------------------------------

SURVEY_NUMBER = "+14155550100"


def test_a_deployment_that_only_calls_back_has_no_survey_number_to_check(sim: PhoneNetwork):
    findings = twilio_findings(sim)
    assert not any("SURVEY_NUMBER" in finding.message for finding in findings)


def test_a_survey_number_wired_to_aftercall_is_ok(sim: PhoneNetwork):
    base = "https://surveys.example.com"
    sim.configure_number(
        SURVEY_NUMBER,
        voice_url=f"{base}/ivr/inbound?survey=post-call",
        status_callback=f"{base}/ivr/inbound/status",
    )
    findings = twilio_findings(sim, survey_number=SURVEY_NUMBER, public_base_url=base)
    (finding,) = [f for f in findings if "SURVEY_NUMBER" in f.message]
    assert finding.status is Status.OK
    assert (
        finding.message
        == f"SURVEY_NUMBER {SURVEY_NUMBER} answers in-call transfers at {base}/ivr/inbound"
    )


def test_a_survey_number_sending_its_calls_elsewhere_warns(sim: PhoneNetwork):
    sim.configure_number(SURVEY_NUMBER, voice_url="https://ivr.example.com/answer")
    findings = twilio_findings(sim, survey_number=SURVEY_NUMBER)
    (warned,) = [f for f in findings if "SURVEY_NUMBER" in f.message]
    assert warned.status is Status.WARN
    assert "https://ivr.example.com/answer" in warned.message
    assert "/ivr/inbound/status" in warned.fix


def test_a_survey_number_without_aftercall_s_status_callback_warns(sim: PhoneNetwork):
    base = "https://surveys.example.com"
    sim.configure_number(SURVEY_NUMBER, voice_url=f"{base}/ivr/inbound")
    findings = twilio_findings(sim, survey_number=SURVEY_NUMBER, public_base_url=base)
    (warned,) = [f for f in findings if "SURVEY_NUMBER" in f.message]
    assert warned.status is Status.WARN and "status callback" in warned.message


def test_a_survey_number_the_account_does_not_have_fails(sim: PhoneNetwork):
    findings = twilio_findings(sim, survey_number="+14155550177")
    (failed,) = [f for f in findings if "SURVEY_NUMBER" in f.message]
    assert failed.status is Status.FAIL and "not a number of this account" in failed.message


@pytest.fixture
def texting_surveys(tmp_path: Path) -> Path:
    """The shipped survey, with the SMS fallback on."""
    folder = tmp_path / "texting-surveys"
    folder.mkdir()
    shipped = (DEFAULT_SURVEYS_DIR / "post-call.toml").read_text()
    (folder / "post-call.toml").write_text(shipped + "\n[sms]\nfallback = true\n")
    return folder


def texting_finding(findings: list[Finding]) -> Finding:
    (finding,) = [f for f in findings if "text" in f.message and "survey" in f.message]
    return finding


def test_a_deployment_that_never_texts_has_no_texting_number_to_check(sim: PhoneNetwork):
    assert not any("texts surveys" in f.message for f in twilio_findings(sim))


def test_a_texting_number_whose_replies_come_to_aftercall_is_ok(sim, texting_surveys):
    base = "https://surveys.example.com"
    sim.configure_number(SURVEY_NUMBER, sms_url=f"{base}/sms/inbound")
    findings = twilio_findings(
        sim, survey_number=SURVEY_NUMBER, public_base_url=base, surveys_dir=texting_surveys
    )
    finding = texting_finding(findings)
    assert finding.status is Status.OK
    assert finding.message == (
        f"{SURVEY_NUMBER} texts surveys (post-call); replies come to {base}/sms/inbound"
    )


def test_a_texting_number_whose_replies_go_elsewhere_warns(sim, texting_surveys):
    sim.configure_number(SURVEY_NUMBER, sms_url="https://crm.example.com/sms")
    findings = twilio_findings(sim, survey_number=SURVEY_NUMBER, surveys_dir=texting_surveys)
    finding = texting_finding(findings)
    assert finding.status is Status.WARN
    assert "not to aftercall: no answer is received" in finding.message
    assert "/sms/inbound" in finding.fix


def test_a_texting_number_the_account_does_not_have_fails(sim, texting_surveys):
    findings = twilio_findings(sim, survey_number="+14155550177", surveys_dir=texting_surveys)
    failed = texting_finding([f for f in findings if "SURVEY_NUMBER" not in f.message])
    assert failed.status is Status.FAIL and "error 21606" in failed.message


def test_follow_up_owners_must_be_dashboard_users(runtime):
    settings = runtime.settings.with_overrides(
        follow_up_owners={"north": "carol", "south": "nobody"}
    )
    with runtime.db.session() as session:
        session.add(User(username="carol", password_hash="x", role="supervisor"))
    (finding,) = doctor.follow_up_settings(settings)
    assert finding.status is Status.WARN
    assert "FOLLOW_UP_OWNERS names nobody, not a dashboard user" in finding.message


def test_an_smtp_host_without_a_sender_warns(runtime):
    settings = runtime.settings.with_overrides(smtp_host="mail.example.com")
    (finding,) = doctor.follow_up_settings(settings)
    assert (finding.status, "SMTP_FROM" in finding.message) == (Status.WARN, True)
