"""`aftercall doctor`: is this deployment ready to place survey calls, and if not, why.

Each check is a small function taking `Settings` (and a timeout) and returning
`Finding`s: ok, warn or FAIL, each with what is wrong and how to fix it. The checks look
at what the processes of a deployment share: the configuration, the database (reachable,
migrated, the report rollup in REPORT_TIME_ZONE), Redis (rq workers, their schedulers,
the cron process, queue depths), the Twilio account (its Account, IncomingPhoneNumbers
and OutgoingCallerIds resources through the twilio SDK and the configured API base, so
phonesim answers them exactly as Twilio would), and the public address Twilio
reaches the webhooks at (GET /healthz, then a webhook signed like Twilio's).

It changes nothing: no migration, no job, no call. The one request that reaches a
webhook is a status callback for attempt 0, which no call has, so the web process
answers it without writing. Rendering is the CLI's business (aftercall.cli).
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import phonenumbers
import requests
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from redis import Redis
from redis.exceptions import RedisError
from requests.exceptions import RequestException
from sqlalchemy import Engine, create_engine, make_url, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

from aftercall.queue_status import overview
from core import migrate
from core.config import REQUIRED_IN_PRODUCTION, ConfigError, Settings
from core.db import make_engine
from core.models import User
from core.survey import SurveyCatalog, SurveyError
from core.survey_store import managed_surveys
from core.telephony import rest_client
from dialer.dispatch import PAUSE_KEY
from dialer.receivers import amazon_connect
from dialer.receivers.mapping import MappingError
from dialer.receivers.mapping_file import load
from dialer.scheduling import CALL_QUEUE
from ivr.prompts import check_phrases
from scoring.alerts import ALERT_QUEUE, alerts_enabled
from scoring.rollup import built_zone
from sms.outbox import MESSAGE_QUEUE

DEFAULT_TIMEOUT = 5.0
# A status callback for an attempt that cannot exist: the web process checks its
# signature, finds no attempt, and answers with empty TwiML, writing nothing.
PROBE_ATTEMPT_ID = 0
PROBE_CALL_SID = "CA" + "0" * 32
DEVELOPMENT_SECRET_KEY = Settings().secret_key


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    message: str
    fix: str = ""


def ok(check: str, message: str) -> Finding:
    return Finding(check, Status.OK, message)


def warn(check: str, message: str, fix: str = "") -> Finding:
    return Finding(check, Status.WARN, message, fix)


def fail(check: str, message: str, fix: str = "") -> Finding:
    return Finding(check, Status.FAIL, message, fix)


@dataclass(frozen=True)
class WebhookUrl:
    purpose: str
    url: str


@dataclass(frozen=True)
class Diagnosis:
    settings: Settings | None
    findings: list[Finding]
    webhook_urls: list[WebhookUrl]

    @property
    def failed(self) -> bool:
        return any(finding.status is Status.FAIL for finding in self.findings)


def diagnose(
    environ: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Diagnosis:
    """Every check, in order; without usable settings only the configuration's."""
    settings, findings = configuration(environ)
    if settings is None:
        return Diagnosis(None, findings, [])
    findings.extend(checks(settings, timeout))
    return Diagnosis(settings, findings, webhook_urls(settings))


def checks(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> list[Finding]:
    """What `settings` point at: surveys, database, Redis, Twilio, the public address."""
    return [
        *surveys(settings),
        *receivers(settings),
        *database(settings, timeout),
        *redis_queues(settings, timeout),
        *twilio_account(settings, timeout),
        *public_url(settings, timeout),
    ]


# -- configuration ---------------------------------------------------------------------


def configuration(
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings | None, list[Finding]]:
    """The settings the other checks use (None if malformed), and what is wrong with them.

    Production's own refusal (core.config) stops at the first kind of problem;
    this names every missing setting and goes on, so the other checks still run.
    """
    env = os.environ if environ is None else environ
    check = "configuration"
    mode = env.get("AFTERCALL_ENV", "").strip() or "development"
    try:
        settings = Settings.from_env({**env, "AFTERCALL_ENV": "development"})
    except ConfigError as exc:
        return None, [fail(check, str(exc), "correct that environment variable (README.md)")]
    settings = settings.with_overrides(env=mode)
    findings: list[Finding] = []
    if mode not in ("development", "production"):
        findings.append(
            warn(
                check,
                f"AFTERCALL_ENV={mode!r} is neither 'production' nor 'development': "
                "production's checks are off",
                "set AFTERCALL_ENV=production on every process of a deployment",
            )
        )
    if settings.is_production:
        missing = [name for name in REQUIRED_IN_PRODUCTION if not env.get(name, "").strip()]
        if missing:
            findings.append(
                fail(
                    check,
                    "missing for AFTERCALL_ENV=production: " + ", ".join(missing),
                    "set each of them on every process (web, worker, cron, release); "
                    "README.md lists what each one is",
                )
            )
        if not settings.public_base_url.startswith("https://"):
            findings.append(
                fail(
                    check,
                    f"PUBLIC_BASE_URL {settings.public_base_url} is not https://",
                    "serve the web process behind TLS and set PUBLIC_BASE_URL to its "
                    "https:// address (docs/twilio.md)",
                )
            )
        if "SECRET_KEY" not in missing and settings.secret_key == DEVELOPMENT_SECRET_KEY:
            findings.append(
                fail(
                    check,
                    "SECRET_KEY is the public development value",
                    'set SECRET_KEY to a long random string: python -c "import secrets; '
                    'print(secrets.token_urlsafe(32))"',
                )
            )
        if "DATABASE_URL" not in missing and settings.database_url.startswith("sqlite"):
            findings.append(
                warn(
                    check,
                    "DATABASE_URL is a SQLite file: only processes on this one machine "
                    "can share it",
                    "use PostgreSQL (postgresql+psycopg://...) in production (docs/deployment.md)",
                )
            )
        if not findings:
            findings.append(ok(check, "AFTERCALL_ENV=production: every required setting is set"))
    else:
        findings.append(
            ok(
                check,
                f"AFTERCALL_ENV={mode}: local defaults are allowed "
                "(set AFTERCALL_ENV=production for a deployment's checks)",
            )
        )
    if settings.alert_webhook_url and not settings.alert_webhook_secret:
        findings.append(
            warn(
                check,
                "ALERT_WEBHOOK_URL is set without ALERT_WEBHOOK_SECRET: detractor alerts are off",
                "set ALERT_WEBHOOK_SECRET on the web and worker processes (docs/alerts.md)",
            )
        )
    return settings, findings


def surveys(settings: Settings) -> list[Finding]:

    check = "surveys"
    fix = "aftercall surveys check names the file and field; correct it or SURVEYS_DIR"
    try:
        catalog = SurveyCatalog.from_directory(settings.surveys_dir)
        for name in catalog.names():
            check_phrases(catalog.get(name), f"{name}.toml")
    except SurveyError as exc:
        return [fail(check, f"{settings.surveys_dir}: {exc}", fix)]
    names = catalog.names()
    if settings.default_survey not in names:
        return [
            fail(
                check,
                f"DEFAULT_SURVEY {settings.default_survey!r} is not among the surveys in "
                f"{settings.surveys_dir} ({', '.join(names) or 'none'})",
                "set DEFAULT_SURVEY to one of them, or add that survey's file",
            )
        ]
    return [ok(check, f"{len(names)} survey(s) in {settings.surveys_dir}: {', '.join(names)}")]


def receivers(settings: Settings) -> list[Finding]:
    """RECEIVERS_FILE, read as the web process reads it at start (where a mistake stops
    it), and a mapping known not to work with what the platform really sends."""
    check = "receivers"
    try:
        mapped = load(settings.receivers_file)
    except MappingError as exc:
        fix = "correct the file (docs/integrations.md lists the fields), or unset RECEIVERS_FILE"
        return [fail(check, str(exc), fix)]
    findings = []
    if settings.receivers_file is not None:
        findings.append(
            ok(check, f"RECEIVERS_FILE {settings.receivers_file} maps the platforms' events")
        )
    if mapped.amazon_connect.fields.phone == amazon_connect.DEFAULT_FIELDS.phone:
        findings.append(
            warn(
                check,
                "Amazon Connect contact events (POST /api/v1/events/amazon-connect) carry no "
                "customer number: with the default mapping every one is refused "
                "(422 unmapped_field)",
                "send contact records through Amazon Data Firehose to "
                "/api/v1/events/amazon-connect/contact-records instead, or map [amazon-connect] "
                "phone to where your events carry the number (docs/integrations.md); "
                "ignore this if you do not use Amazon Connect's contact events",
            )
        )
    return findings


# -- the database ----------------------------------------------------------------------


def database(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> list[Finding]:
    """Reachable, at the migration head, and the rollup in the report zone."""

    check = "database"
    url = settings.database_url
    shown = masked_url(url)
    upgrade = "run `aftercall db upgrade` (the Procfile's release step) with this DATABASE_URL"
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.exists():
        # Connecting would create an empty file; say what is missing instead.
        return [fail(check, f"no database file at {sqlite_file}", upgrade)]
    engine = _engine(url, timeout)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
            with Session(bind=connection) as session:
                zone = _rollup_zone(session, current)
    except SQLAlchemyError as exc:
        return [
            fail(
                check,
                f"cannot use {shown}: {_first_line(exc)}",
                "check DATABASE_URL (host, port, database, user, password) and that the "
                "server is up and accepts connections from this machine",
            )
        ]
    finally:
        engine.dispose()

    scripts = ScriptDirectory.from_config(migrate.alembic_config(url))
    heads = set(scripts.get_heads())
    known = {revision.revision for revision in scripts.walk_revisions()}
    findings = [ok(check, f"{shown} is reachable")]
    if not current:
        findings.append(fail(check, "the database is empty (no schema)", upgrade))
        return findings
    unknown = set(current) - known
    if unknown:
        findings.append(
            fail(
                check,
                f"the schema is at {', '.join(sorted(unknown))}, a revision this aftercall "
                "does not know (a newer release migrated it?)",
                "run the release that migrated it, or restore a backup taken before",
            )
        )
        return findings
    if set(current) != heads:
        findings.append(
            fail(
                check,
                f"the schema is at {', '.join(sorted(current))}; this release needs "
                f"{', '.join(sorted(heads))}",
                upgrade,
            )
        )
        return findings
    findings.append(ok(check, f"the schema is at the latest migration ({', '.join(heads)})"))
    findings.append(_rollup_finding(settings, url, zone))
    findings.extend(database_surveys(settings, timeout))
    findings.extend(follow_up_settings(settings, timeout))
    return findings


def database_surveys(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> list[Finding]:
    """The surveys kept in the database (core.survey_store, docs/surveys.md): each valid
    as the web process checks it at start, and none that a file in SURVEYS_DIR defines
    too, since the file's is then what calls use and the dashboard's edits go nowhere."""
    check = "surveys"
    try:
        files = set(SurveyCatalog.from_directory(settings.surveys_dir).names())
    except (SurveyError, OSError):
        files = set()  # the surveys check says what is wrong with them
    engine = _engine(settings.database_url, timeout)
    try:
        with Session(engine) as session:
            stored = managed_surveys(session)
    except SQLAlchemyError:
        return []  # the database check says what is wrong
    except SurveyError as exc:
        return [fail(check, f"a survey kept in the database cannot be read: {exc}")]
    finally:
        engine.dispose()
    findings = []
    for survey in stored:
        if survey.name in files:
            findings.append(
                warn(
                    check,
                    f"{survey.name!r} is defined twice: by the file "
                    f"{settings.surveys_dir / (survey.name + '.toml')} and in the database "
                    f"(revision {survey.revision}, last changed by {survey.updated_by}); "
                    "calls use the file's, and edits in the dashboard change nothing",
                    f"keep one: remove the file (after `aftercall surveys export --name "
                    f"{survey.name} DIR` if the database's is the one to keep as a file), or "
                    "retire the database's in the dashboard and copy it under another name",
                )
            )
        try:
            check_phrases(survey.definition, f"survey {survey.name} (database)")
        except SurveyError as exc:
            findings.append(
                fail(check, str(exc), "correct the phrase in the dashboard's survey editor")
            )
    if stored and not findings:
        active = [survey.name for survey in stored if not survey.retired]
        retired = len(stored) - len(active)
        findings.append(
            ok(
                check,
                f"{len(active)} survey(s) kept in the database: {', '.join(active) or 'none'}"
                + (f" ({retired} retired)" if retired else ""),
            )
        )
    return findings


def follow_up_settings(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> list[Finding]:
    """FOLLOW_UP_OWNERS names dashboard users who exist, and the digest's email has a
    sender (docs/follow-ups.md, docs/alerts.md)."""
    check = "follow-ups"
    findings: list[Finding] = []
    owners = sorted(set(settings.follow_up_owners.values()))
    if owners:
        engine = _engine(settings.database_url, timeout)
        try:
            with engine.connect() as connection:
                known = set(
                    connection.execute(
                        select(User.username).where(User.username.in_(owners))
                    ).scalars()
                )
        except SQLAlchemyError:
            known = set(owners)  # the database check says what is wrong
        finally:
            engine.dispose()
        missing = [owner for owner in owners if owner not in known]
        if missing:
            findings.append(
                warn(
                    check,
                    f"FOLLOW_UP_OWNERS names {', '.join(missing)}, not a dashboard user: "
                    "their teams' follow-ups go to nobody who can sign in",
                    "create them (`aftercall user create NAME --role supervisor`) or "
                    "correct FOLLOW_UP_OWNERS",
                )
            )
        else:
            findings.append(ok(check, f"follow-up owners are dashboard users: {', '.join(owners)}"))
    if settings.smtp_host and not settings.smtp_from:
        findings.append(
            warn(
                check,
                "SMTP_HOST is set but SMTP_FROM is not: no digest is emailed",
                "set SMTP_FROM to the sender address (docs/alerts.md)",
            )
        )
    return findings


def _rollup_zone(session: Session, current: tuple[str, ...]) -> str | None:

    if not current:
        return None
    try:
        with session.begin_nested():
            return built_zone(session)
    except SQLAlchemyError:
        return None  # a schema from before the rollup: the migration check says so


def _rollup_finding(settings: Settings, url: str, zone: str | None) -> Finding:
    check = "database"
    wanted = settings.report_time_zone
    rebuild = (
        "run `aftercall db upgrade` with this REPORT_TIME_ZONE (it rebuilds the rollup once; "
        "writers wait meanwhile, about a minute per 10 million answers)"
    )
    if zone is None:
        return fail(
            check,
            "the daily report rollup is not built: reports over months read every answer",
            rebuild,
        )
    if zone != wanted:
        return fail(
            check,
            f"the report rollup is built in {zone}, but REPORT_TIME_ZONE is {wanted}: "
            f"reports in {wanted} cannot use it",
            rebuild + "; or set REPORT_TIME_ZONE alike on every process",
        )
    return ok(check, f"the daily report rollup is built in REPORT_TIME_ZONE ({wanted})")


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _engine(url: str, timeout: float) -> Engine:

    if make_url(url).get_backend_name() == "postgresql":
        # libpq's connect_timeout: an unreachable host fails in seconds, not minutes.
        return create_engine(url, connect_args={"connect_timeout": max(1, round(timeout))})
    return make_engine(url)


# -- Redis: the queues, the workers, the schedulers --------------------------------------


def redis_queues(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> list[Finding]:

    check = "redis"
    shown = masked_url(settings.redis_url)
    connection = Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        connection.ping()
        return [ok(check, f"{shown} is reachable"), *_queue_findings(settings, connection)]
    except RedisError as exc:
        return [
            fail(
                check,
                f"cannot reach Redis at {shown}: {_first_line(exc)}",
                "start Redis, or correct REDIS_URL; every process must name the same Redis",
            )
        ]
    finally:
        connection.close()


def _queue_findings(settings: Settings, connection) -> list[Finding]:
    # What the dashboard's Queues page shows, read the same way (aftercall.queue_status:
    # without rq's registry cleanup, so a diagnosis never moves a job).

    check = "redis"
    start_worker = (
        "start the Procfile's worker process "
        "(rq worker --with-scheduler --url $REDIS_URL calls messages alerts) against this "
        "REDIS_URL"
    )
    findings: list[Finding] = []
    status = overview(connection)
    for name in (CALL_QUEUE, MESSAGE_QUEUE, ALERT_QUEUE):
        # Without alert settings nothing is ever queued on `alerts`, and without SMS surveys
        # nothing on `messages`: their absence is a warning, no failure.
        missing = (
            fail
            if name == CALL_QUEUE or (name == ALERT_QUEUE and alerts_enabled(settings))
            else warn
        )
        listening = [worker for worker in status.workers if name in worker.queues]
        if listening:
            hosts = sorted({worker.hostname or "?" for worker in listening})
            findings.append(
                ok(
                    check,
                    f"{len(listening)} rq worker(s) on the {name!r} queue (on {', '.join(hosts)})",
                )
            )
        else:
            findings.append(
                missing(check, f"no rq worker listens on the {name!r} queue", start_worker)
            )
        queue = status.queue(name)
        assert queue is not None  # aftercall's own queues are always listed
        if queue.scheduler is not None:
            findings.append(ok(check, f"an rq scheduler runs the {name!r} queue's scheduled jobs"))
        else:
            what = {CALL_QUEUE: "survey calls and retries", MESSAGE_QUEUE: "paced texts"}.get(
                name, "alert retries"
            )
            findings.append(
                missing(
                    check,
                    f"no rq scheduler holds the {name!r} queue: scheduled {what} never run",
                    "run the worker with --with-scheduler (as the Procfile does)",
                )
            )
        depth = (
            f"queue {name!r}: {queue.waiting} waiting, {queue.scheduled} scheduled, "
            f"{queue.failed} failed"
        )
        if queue.failed:
            again = (
                "`aftercall dialer reconcile` queues scheduled calls again from the database"
                if name == CALL_QUEUE
                else "requeue them on the dashboard's Queues page once the receiver works"
            )
            findings.append(warn(check, depth, f"see why on the dashboard's Queues page; {again}"))
        else:
            findings.append(ok(check, depth))
    if status.cron:
        findings.append(ok(check, "the rq cron scheduler is alive (reconciliation, rollup upkeep)"))
    else:
        findings.append(
            fail(
                check,
                "no rq cron scheduler is running: lost calls are not reconciled and the "
                "report rollup is not compacted",
                "start the Procfile's cron process (rq cron aftercall.cron --url $REDIS_URL), "
                "one per deployment",
            )
        )
    paused = connection.get(PAUSE_KEY)
    if paused is not None:
        reason = paused.decode() if isinstance(paused, bytes) else str(paused)
        findings.append(
            warn(
                check,
                f"dialing is PAUSED: {reason}",
                "fix the cause, then `aftercall dialer resume` (held calls go out then)",
            )
        )
    return findings


# -- Twilio ------------------------------------------------------------------------------


INACTIVE_FIX = (
    "reactivate it in the Twilio Console (pay the balance; for a suspended subaccount, set "
    "its Status to active); if dialing was paused, `aftercall dialer resume` afterwards"
)
CLOSED_FIX = (
    "a closed account cannot be reopened: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
    "to an active account's on every process"
)
# Twilio's codes for a request from a suspended or closed account.
INACTIVE_ACCOUNT_ERRORS = frozenset({10001, 20005})


def twilio_account(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> list[Finding]:
    """The credentials, the account's state and type, and the number calls come from.

    The same requests whether TWILIO_API_BASE points at Twilio or at the simulator:
    fetch the Account, then look the from-number up among the account's numbers and
    verified caller IDs.
    """

    check = "twilio"
    where = settings.twilio_api_base or "Twilio's API"
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        make = fail if settings.is_production else warn
        return [
            make(
                check,
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set: no survey call can be "
                "placed (the demo uses its own simulator)",
                "copy both from the Twilio Console's account info (docs/twilio.md)",
            )
        ]
    client = rest_client(settings, timeout=timeout)
    try:
        account = client.api.v2010.accounts(settings.twilio_account_sid).fetch()
    except (TwilioException, RequestException) as exc:
        return [_refusal(settings, exc, where)]

    findings: list[Finding] = []
    if account.status != "active":
        findings.append(
            fail(
                check,
                f"the Twilio account {account.friendly_name!r} is {account.status}: "
                "no call can be placed",
                CLOSED_FIX if account.status == "closed" else INACTIVE_FIX,
            )
        )
    else:
        findings.append(
            ok(check, f"credentials accepted: account {account.friendly_name!r} is active")
        )
        if (account.type or "").lower() == "trial":
            findings.append(
                warn(
                    check,
                    "a trial account: it calls only verified numbers, only within its own "
                    "country, and ends calls after 10 minutes",
                    "fine for a first test call to your own verified phone; upgrade the "
                    "account before surveying customers (docs/twilio.md)",
                )
            )
    findings.extend(_from_number(settings, client))
    findings.extend(_survey_number(settings, client))
    findings.extend(_texting_number(settings, client))
    findings.append(
        ok(
            check,
            f"CALLS_PER_SECOND={settings.calls_per_second:g}, MAX_CONCURRENT_CALLS="
            f"{settings.max_concurrent_calls}: keep CALLS_PER_SECOND at or below the "
            "account's CPS (Console: Voice settings)",
        )
    )
    return findings


def _refusal(settings: Settings, exc: BaseException, where: str) -> Finding:
    """Why the Account could not be fetched, and what to do about it."""
    check = "twilio"
    status, code, message = _twilio_error(exc)
    if code in INACTIVE_ACCOUNT_ERRORS:
        return fail(
            check,
            f"{where} says the account {settings.twilio_account_sid} is not active "
            f"(HTTP {status}, error {code}: {message})",
            INACTIVE_FIX,
        )
    if status == 401 or code in (20003, 20006):
        return fail(
            check,
            f"{where} refused TWILIO_ACCOUNT_SID {settings.twilio_account_sid} "
            f"with this TWILIO_AUTH_TOKEN (HTTP {status}, error {code})",
            "copy the Account SID and the current Auth Token from the Twilio Console into "
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN on every process; if dialing was "
            "paused, `aftercall dialer resume` afterwards",
        )
    if status is not None:
        return fail(check, f"{where} answered HTTP {status}, error {code}: {message}")
    return fail(
        check,
        f"cannot reach {where}: {message}",
        "check this machine's outbound HTTPS (proxy, firewall) or TWILIO_API_BASE",
    )


def _from_number(settings: Settings, client) -> list[Finding]:

    check = "twilio"
    number = settings.twilio_from_number
    if not number:
        make = fail if settings.is_production else warn
        return [
            make(
                check,
                "TWILIO_FROM_NUMBER is not set",
                "set it to a voice number of this account, in E.164 (+14155550100)",
            )
        ]
    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        valid = False
    if not valid or not number.startswith("+"):
        return [
            fail(
                check,
                f"TWILIO_FROM_NUMBER {number!r} is not a phone number in E.164",
                "write it with + and the country code, no spaces: +14155550100",
            )
        ]
    findings: list[Finding] = []
    try:
        incoming = _account_number(client, number)
        verified = incoming is None and any(
            caller_id.phone_number == number
            for caller_id in client.outgoing_caller_ids.stream(phone_number=number)
        )
    except (TwilioException, RequestException) as exc:
        status, code, message = _twilio_error(exc)
        answered = f"HTTP {status}, error {code}: " if status is not None else ""
        return [
            warn(
                check,
                f"could not look up TWILIO_FROM_NUMBER {number} among the account's numbers "
                f"and verified caller IDs ({answered}{message})",
                "run `aftercall doctor` again; if it persists, check the number in the "
                "Twilio Console (Phone Numbers)",
            )
        ]
    if incoming is not None:
        capabilities = incoming.capabilities or {}
        if capabilities.get("voice") is False:
            findings.append(
                fail(
                    check,
                    f"TWILIO_FROM_NUMBER {number} is on the account but not voice-capable",
                    "buy a voice-capable number and set TWILIO_FROM_NUMBER to it",
                )
            )
        else:
            findings.append(ok(check, f"TWILIO_FROM_NUMBER {number} is a number of this account"))
        if settings.callback_number == number:
            handler = incoming.voice_url or "nothing"
            findings.append(
                warn(
                    check,
                    f"customers are told to call back {number} (CALLBACK_NUMBER defaults to "
                    f"TWILIO_FROM_NUMBER); aftercall does not answer incoming calls, and that "
                    f"number's incoming-call webhook is {handler}",
                    "set CALLBACK_NUMBER to your contact center's number, or forward the "
                    "number's incoming calls there in the Twilio Console",
                )
            )
    elif verified:
        findings.append(
            ok(
                check,
                f"TWILIO_FROM_NUMBER {number} is a verified caller ID of this account "
                "(not a Twilio number: customers calling it back reach that phone)",
            )
        )
    else:
        findings.append(
            fail(
                check,
                f"TWILIO_FROM_NUMBER {number} is neither a number of this account nor a "
                "verified caller ID: Twilio refuses such calls (error 21210)",
                "buy a voice number in the Twilio Console (Phone Numbers) or verify this one, "
                "and set TWILIO_FROM_NUMBER to it",
            )
        )
    return findings


def _account_number(client, number: str) -> Any:
    """The account's own number `number`, or None."""
    # Twilio's PhoneNumber filter also matches longer numbers containing this one.
    return next(
        (n for n in client.incoming_phone_numbers.stream(phone_number=number)
         if n.phone_number == number),
        None,
    )  # fmt: skip


def _survey_number(settings: Settings, client) -> list[Finding]:
    """The number customers are transferred to for in-call surveys (docs/in-call.md):
    checked when SURVEY_NUMBER names one of its own, or when the number already sends
    its calls to aftercall. A deployment that only calls back has nothing to check."""
    check = "twilio"
    number = settings.survey_number
    inbound = f"{settings.public_base_url}/ivr/inbound"
    explicit = bool(number) and number != settings.twilio_from_number
    if not number:
        return []
    try:
        incoming = _account_number(client, number)
    except (TwilioException, RequestException) as exc:
        if not explicit:
            return []
        return [warn(check, f"could not look up SURVEY_NUMBER {number}: {_first_line(exc)}")]
    voice_url = (incoming.voice_url or "") if incoming is not None else ""
    if not explicit and not voice_url.startswith(inbound):
        return []
    fix = (
        f"in the Twilio Console (Phone Numbers), set its incoming-call webhook to POST "
        f"{inbound} and its call status changes to POST {inbound}/status"
    )
    if incoming is None:
        return [
            fail(
                check,
                f"SURVEY_NUMBER {number} is not a number of this account: transfers to it "
                "never reach aftercall",
                "buy a voice number in the Twilio Console and set SURVEY_NUMBER to it",
            )
        ]
    if not voice_url.startswith(inbound):
        return [
            warn(
                check,
                f"SURVEY_NUMBER {number} sends its calls to {voice_url or 'nothing'}, not to "
                "aftercall: customers transferred to it are not surveyed",
                fix,
            )
        ]
    if not (incoming.status_callback or "").startswith(f"{inbound}/status"):
        return [
            warn(
                check,
                f"SURVEY_NUMBER {number} answers in-call transfers, but its status callback "
                "is not aftercall's: a hang-up is learned only when reconciliation asks "
                "Twilio, minutes later",
                fix,
            )
        ]
    return [ok(check, f"SURVEY_NUMBER {number} answers in-call transfers at {inbound}")]


def _texting_number(settings: Settings, client) -> list[Finding]:
    """The number survey texts come from and replies go to (docs/sms.md): checked when a
    survey texts (`channel = "sms"` or `[sms] fallback = true`)."""
    check = "twilio"
    try:
        catalog = SurveyCatalog.from_directory(settings.surveys_dir)
    except (SurveyError, OSError):
        return []  # the surveys check says what is wrong with them
    texting = [
        name
        for name in catalog.names()
        if catalog.get(name).channel == "sms" or catalog.get(name).sms.fallback
    ]
    if not texting:
        return []
    number = settings.survey_number or settings.twilio_from_number
    inbound = f"{settings.public_base_url}/sms/inbound"
    fix = (
        f"in the Twilio Console (Phone Numbers), set its Messaging webhook 'A message comes "
        f"in' to POST {inbound}"
    )
    surveys = ", ".join(texting)
    try:
        incoming = _account_number(client, number)
    except (TwilioException, RequestException) as exc:
        return [warn(check, f"could not look up the texting number {number}: {_first_line(exc)}")]
    if incoming is None:
        return [
            fail(
                check,
                f"surveys {surveys} text customers, but {number} is not a number of this "
                "account: Twilio refuses to send from it (error 21606)",
                "buy an SMS-capable number and set SURVEY_NUMBER to it",
            )
        ]
    if (incoming.capabilities or {}).get("sms") is False:
        return [
            fail(
                check,
                f"surveys {surveys} text customers, but {number} cannot send texts",
                "buy an SMS-capable number and set SURVEY_NUMBER to it",
            )
        ]
    if not (incoming.sms_url or "").startswith(inbound):
        return [
            warn(
                check,
                f"{number} texts surveys ({surveys}), but its replies go to "
                f"{incoming.sms_url or 'nothing'}, not to aftercall: no answer is received",
                fix,
            )
        ]
    return [ok(check, f"{number} texts surveys ({surveys}); replies come to {inbound}")]


# -- the public address ------------------------------------------------------------------


def public_url(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> list[Finding]:
    """https, reachable from here (GET /healthz), and signed webhooks accepted there."""
    check = "public url"
    base = settings.public_base_url
    parts = urlsplit(base)
    findings: list[Finding] = []
    if parts.scheme != "https" and not settings.is_production:
        # In production the configuration check already fails on it.
        findings.append(
            warn(
                check,
                f"PUBLIC_BASE_URL {base} is not https: fine for the simulator, but Twilio "
                "should reach the webhooks over TLS with a valid certificate",
                "serve the web process behind TLS (a load balancer, a proxy, or a tunnel "
                "for a trial) and set PUBLIC_BASE_URL to that https:// address",
            )
        )
    if _is_private_host(parts.hostname or ""):
        make = fail if settings.is_production else warn
        findings.append(
            make(
                check,
                f"{parts.hostname} is a local or private address: Twilio cannot reach it",
                "for a trial from this machine, expose it with a tunnel (docs/twilio.md)",
            )
        )
    health = f"{base}/healthz"
    try:
        reply = requests.get(health, timeout=timeout, allow_redirects=False)
    except requests.exceptions.SSLError as exc:
        findings.append(
            fail(
                check,
                f"GET {health}: TLS failed ({_first_line(exc)})",
                "Twilio refuses self-signed and expired certificates: use one from a public "
                "CA (Let's Encrypt) for that host name",
            )
        )
        return findings
    except requests.exceptions.RequestException as exc:
        findings.append(
            fail(
                check,
                f"GET {health} failed: {_first_line(exc)}",
                "start the web process (Procfile `web`) and make PUBLIC_BASE_URL reach it: "
                "DNS, firewall, load balancer or tunnel",
            )
        )
        return findings
    if reply.is_redirect:
        findings.append(
            fail(
                check,
                f"GET {health} redirects to {reply.headers.get('Location')}",
                "set PUBLIC_BASE_URL to the address that answers itself: Twilio signs the "
                "exact URL it requests",
            )
        )
        return findings
    if reply.status_code != 200 or not _says_ok(reply):
        findings.append(
            fail(
                check,
                f"GET {health} answered HTTP {reply.status_code}, not aftercall's "
                '{"status": "ok"} (/healthz also checks the database)',
                "look at the web process's log; is PUBLIC_BASE_URL pointing at aftercall?",
            )
        )
        return findings
    findings.append(
        ok(check, f"GET {health}: 200 from here (whether Twilio can reach it, only it can tell)")
    )
    findings.append(_signed_webhook(settings, timeout))
    return findings


def _signed_webhook(settings: Settings, timeout: float) -> Finding:
    """Post a status callback signed as Twilio would; the web process must take it."""

    check = "public url"
    if not settings.twilio_auth_token:
        return warn(check, "no TWILIO_AUTH_TOKEN: the webhooks' signature check not tried")
    url = f"{settings.public_base_url}/voice/attempts/{PROBE_ATTEMPT_ID}/status"
    params = {
        "AccountSid": settings.twilio_account_sid,
        "CallSid": PROBE_CALL_SID,
        "CallStatus": "completed",
    }
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(url, params)
    try:
        signed = requests.post(
            url, data=params, headers={"X-Twilio-Signature": signature}, timeout=timeout
        )
        unsigned = requests.post(url, data=params, timeout=timeout)
    except requests.exceptions.RequestException as exc:
        return fail(check, f"POST {url} failed: {_first_line(exc)}")
    if signed.status_code == 200 and unsigned.status_code == 403:
        return ok(
            check,
            "a webhook signed with this TWILIO_AUTH_TOKEN for this PUBLIC_BASE_URL is "
            "accepted there, an unsigned one refused",
        )
    if signed.status_code == 403:
        return fail(
            check,
            f"the web process at {settings.public_base_url} refused a webhook signed with "
            "this TWILIO_AUTH_TOKEN for this PUBLIC_BASE_URL (403): it would refuse Twilio's",
            "give the web process the same TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL as here; "
            "behind a proxy, PUBLIC_BASE_URL is the address Twilio uses (scheme, host, "
            "port, path prefix) and the proxy must pass the path and query unchanged",
        )
    return fail(
        check,
        f"POST {url}: signed HTTP {signed.status_code}, unsigned HTTP {unsigned.status_code} "
        "(expected 200 and 403)",
        "is PUBLIC_BASE_URL pointing at aftercall's web process?",
    )


def webhook_urls(settings: Settings) -> list[WebhookUrl]:
    """The URLs Twilio is given, per call, by the dialer and the TwiML (aftercall.web.voice)."""
    base = f"{settings.public_base_url}/voice/attempts/<attempt id>"
    return [
        WebhookUrl("call (Url)", f"{base}/start"),
        WebhookUrl("status callback", f"{base}/status"),
        WebhookUrl("machine detection", f"{base}/amd"),
        WebhookUrl(
            "keypad answers",
            f"{base}/questions/<question>?try=<n>&ref=<request.version.digest.language>",
        ),
        WebhookUrl("recorded comment", f"{base}/questions/<question>/recording"),
        WebhookUrl("transcription", f"{base}/questions/<question>/transcription"),
        WebhookUrl("voicemail message", f"{base}/voicemail"),
    ]


# -- small things ------------------------------------------------------------------------


def masked_url(url: str) -> str:
    """A URL fit to print: its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _twilio_error(exc: BaseException) -> tuple[int | None, int | None, str]:
    """HTTP status, Twilio error code and message of what the SDK raised.

    A fetch raises TwilioRestException; a list raises a bare TwilioException carrying
    the HTTP response ("Unable to fetch page", response); network trouble raises
    requests' exceptions, which have no status.
    """

    if isinstance(exc, TwilioRestException):
        return exc.status, exc.code, exc.msg
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    if status is None:
        return None, None, _first_line(exc)
    try:
        body = json.loads(response.text)
    except (ValueError, TypeError):
        body = {}
    return status, body.get("code"), body.get("message") or exc.args[0]


def _is_private_host(host: str) -> bool:
    if host in ("localhost", "") or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


def _says_ok(reply: requests.Response) -> bool:
    try:
        return reply.json().get("status") == "ok"
    except ValueError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
