"""Settings read from the environment, once, into one immutable object.

Every process (web, worker, CLI) builds its `Settings` with `Settings.from_env()` and
passes it down; nothing else reads `os.environ`. Local runs get safe defaults (a SQLite
file, a local Redis, no Twilio account); production (`AFTERCALL_ENV=production`)
refuses to start while a setting it cannot do without is missing, naming each one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.utils import getaddresses
from pathlib import Path
from typing import Any

DEFAULT_SURVEYS_DIR = Path(__file__).parent / "surveys"

# Settings a production deployment cannot run without: the database and queue it shares
# with other processes, the Twilio account it calls from, and the public https address
# Twilio signs its webhooks against.
REQUIRED_IN_PRODUCTION = (
    "DATABASE_URL",
    "REDIS_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "PUBLIC_BASE_URL",
    "COMPANY_NAME",
    "CALLBACK_NUMBER",
    "SECRET_KEY",
)


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = "sqlite:///aftercall.db"
    redis_url: str = "redis://localhost:6379/0"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    # Unset means Twilio's real API; the simulator or a test points it elsewhere.
    twilio_api_base: str = ""
    public_base_url: str = "http://localhost:5000"
    company_name: str = "Example Company"
    callback_number: str = ""
    surveys_dir: Path = field(default=DEFAULT_SURVEYS_DIR)
    default_survey: str = "post-call"
    # How old, in seconds, a process's copy of the surveys kept in the database may get
    # before a lookup reads them again (core.survey_store.CombinedSurveyCatalog): a
    # survey saved in the dashboard reaches every web and worker process within it.
    survey_refresh_seconds: float = 2.0
    # Region for numbers given without a country code ("415 555 0123"), e.g. "US".
    default_region: str = ""
    # Zone for numbers whose time zone the numbering plan does not tell.
    fallback_time_zone: str = "UTC"
    # Pacing across all workers: Twilio accounts start at 1 call per second.
    calls_per_second: float = 1.0
    # Texts per second (the SMS channel): a US long code's limit is 1 segment a second;
    # toll-free and short codes allow more (set it to the number's documented rate).
    messages_per_second: float = 1.0
    max_concurrent_calls: int = 50
    # The contact center's own time zone: report days, weeks and months are local to it.
    report_time_zone: str = "UTC"
    # Signs dashboard session cookies; a fixed development value is used locally.
    secret_key: str = "development-only-secret-key"
    # Where detractor alerts are posted (a CRM, a chat tool); unset: no alerts.
    alert_webhook_url: str = ""
    alert_webhook_secret: str = ""
    # Requests per minute each API key may make (intake and reports together).
    api_rate_limit: int = 600
    # Anonymise survey requests (and delete their recordings at Twilio) this many days
    # after the support call, daily through `rq cron`; unset: keep them until purged.
    retention_days: int | None = None
    # A bearer token Prometheus must send to GET /metrics; unset: /metrics is open
    # (serve it on a private network only).
    metrics_token: str = ""
    # "json" (one object per line, for log shippers) or "text"; unset: json in production.
    log_format: str = ""
    # The auth token of the Twilio account that runs Flex, which signs TaskRouter's event
    # callbacks; unset: TWILIO_AUTH_TOKEN (Flex in the account surveys are called from).
    flex_auth_token: str = ""
    # A TOML file mapping contact-center platforms' events onto intake fields
    # (dialer.receivers); unset: each receiver's documented defaults.
    receivers_file: Path | None = None
    # Who owns a new follow-up (scoring.follow_ups), by the call's team: a dashboard
    # username per team, FOLLOW_UP_OWNERS="north=carol, south=dave"; a team not named
    # (or no team) leaves it unassigned.
    follow_up_owners: Mapping[str, str] = field(default_factory=dict)
    # The number customers are transferred to for an in-call survey (its voice URL is
    # POST /ivr/inbound); unset: TWILIO_FROM_NUMBER.
    survey_number: str = ""
    # How long before and after a transfer a support call's end may lie for the caller's
    # number to match it (and for a late call-ended event to claim the survey).
    in_call_match_seconds: int = 300
    # How long a transfer token stays valid after intake issued it.
    in_call_token_minutes: int = 15
    # Seconds the survey number listens, silently, for a token sent as DTMF digits when
    # the transfer's URL carries none (PSTN platforms); 0: never listen.
    in_call_listen_seconds: int = 2
    # Where each owner's daily digest of overdue follow-ups is emailed
    # (scoring.follow_up_digest), by dashboard username, since a dashboard user has no
    # address of their own: FOLLOW_UP_EMAILS="carol=carol@example.com, dave=dave@example.com";
    # an owner not named gets the digest by webhook only.
    follow_up_emails: Mapping[str, str] = field(default_factory=dict)
    # Where the digest of overdue follow-ups nobody owns is emailed; unset: webhook only.
    follow_up_digest_email: str = ""
    # The mail server the digests go out through; unset SMTP_HOST: no email at all.
    smtp_host: str = ""
    # 587 is the submission port; STARTTLS upgrades it to TLS before the password is sent.
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    # The From address of the digests; required for email to be sent.
    smtp_from: str = ""
    # Refuse to send without TLS (STARTTLS on the plain connection); only a local relay
    # or a test's sink goes without.
    smtp_starttls: bool = True

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" or (not self.log_format and self.is_production)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default `os.environ`) and check them."""
        env = os.environ if environ is None else environ
        defaults = cls()

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        settings = cls(
            env=get("AFTERCALL_ENV", defaults.env),
            database_url=get("DATABASE_URL", defaults.database_url),
            redis_url=get("REDIS_URL", defaults.redis_url),
            twilio_account_sid=get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=get("TWILIO_AUTH_TOKEN", ""),
            twilio_from_number=get("TWILIO_FROM_NUMBER", ""),
            twilio_api_base=get("TWILIO_API_BASE", "").rstrip("/"),
            public_base_url=get("PUBLIC_BASE_URL", defaults.public_base_url).rstrip("/"),
            company_name=get("COMPANY_NAME", defaults.company_name),
            callback_number=get("CALLBACK_NUMBER", get("TWILIO_FROM_NUMBER", "")),
            surveys_dir=Path(get("SURVEYS_DIR", str(defaults.surveys_dir))),
            default_survey=get("DEFAULT_SURVEY", defaults.default_survey),
            survey_refresh_seconds=_survey_refresh_seconds(env, defaults.survey_refresh_seconds),
            default_region=get("DEFAULT_REGION", "").upper(),
            fallback_time_zone=get("FALLBACK_TIME_ZONE", defaults.fallback_time_zone),
            calls_per_second=_number(env, "CALLS_PER_SECOND", defaults.calls_per_second, float),
            messages_per_second=_number(
                env, "MESSAGES_PER_SECOND", defaults.messages_per_second, float
            ),
            max_concurrent_calls=_number(
                env, "MAX_CONCURRENT_CALLS", defaults.max_concurrent_calls, int
            ),
            report_time_zone=_time_zone(get("REPORT_TIME_ZONE", defaults.report_time_zone)),
            secret_key=get("SECRET_KEY", defaults.secret_key),
            alert_webhook_url=get("ALERT_WEBHOOK_URL", ""),
            alert_webhook_secret=get("ALERT_WEBHOOK_SECRET", ""),
            api_rate_limit=_number(env, "API_RATE_LIMIT", defaults.api_rate_limit, int),
            retention_days=_number(env, "RETENTION_DAYS", None, int),
            metrics_token=get("METRICS_TOKEN", ""),
            log_format=_choice(env, "LOG_FORMAT", ("json", "text")),
            flex_auth_token=get("FLEX_AUTH_TOKEN", ""),
            receivers_file=Path(get("RECEIVERS_FILE", "")) if get("RECEIVERS_FILE", "") else None,
            survey_number=get("SURVEY_NUMBER", get("TWILIO_FROM_NUMBER", "")),
            follow_up_owners=_owners(get("FOLLOW_UP_OWNERS", "")),
            in_call_match_seconds=_number(
                env, "IN_CALL_MATCH_SECONDS", defaults.in_call_match_seconds, int
            ),
            in_call_token_minutes=_number(
                env, "IN_CALL_TOKEN_MINUTES", defaults.in_call_token_minutes, int
            ),
            in_call_listen_seconds=_seconds(
                env, "IN_CALL_LISTEN_SECONDS", defaults.in_call_listen_seconds, high=10
            ),
            follow_up_emails=_emails(get("FOLLOW_UP_EMAILS", "")),
            follow_up_digest_email=_address(
                "FOLLOW_UP_DIGEST_EMAIL", get("FOLLOW_UP_DIGEST_EMAIL", "")
            ),
            smtp_host=get("SMTP_HOST", ""),
            smtp_port=_port(env, "SMTP_PORT", defaults.smtp_port),
            smtp_username=get("SMTP_USERNAME", ""),
            smtp_password=get("SMTP_PASSWORD", ""),
            smtp_from=_address("SMTP_FROM", get("SMTP_FROM", "")),
            smtp_starttls=_flag(env, "SMTP_STARTTLS", defaults.smtp_starttls),
        )
        if settings.is_production:
            missing = [name for name in REQUIRED_IN_PRODUCTION if not env.get(name, "").strip()]
            if missing:
                raise ConfigError(
                    "missing required setting(s) for AFTERCALL_ENV=production: "
                    + ", ".join(missing)
                )
            if not settings.public_base_url.startswith("https://"):
                raise ConfigError(
                    "PUBLIC_BASE_URL must be an https:// address in production "
                    "(Twilio signs webhooks against it)"
                )
        return settings

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields replaced; used by tests and the demo."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _owners(raw: str) -> dict[str, str]:
    """FOLLOW_UP_OWNERS: "team=username" pairs, separated by commas."""
    owners: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in raw.split(","))):
        team, sep, user = (text.strip() for text in pair.partition("="))
        if not sep or not team or not user:
            raise ConfigError(
                f"FOLLOW_UP_OWNERS: expected team=username pairs separated by commas, got {pair!r}"
            )
        owners[team] = user
    return owners


def _number(env: Mapping[str, str], name: str, default: float | None, kind: type) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be greater than zero, got {raw!r}")
    return value


# A process re-reads the surveys kept in the database this often at most: much more
# often and every survey lookup (intake, webhooks) would query; much less and a saved
# or retired survey would take that long to reach the workers.
SURVEY_REFRESH_RANGE = (0.1, 3600.0)


def _survey_refresh_seconds(env: Mapping[str, str], default: float) -> float:
    value = _number(env, "SURVEY_REFRESH_SECONDS", default, float)
    low, high = SURVEY_REFRESH_RANGE
    if not low <= value <= high:
        raise ConfigError(
            f"SURVEY_REFRESH_SECONDS must be from {low:g} to {high:g} seconds, got {value:g}"
        )
    return value


def _seconds(env: Mapping[str, str], name: str, default: int, *, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > high:
        raise ConfigError(f"{name} must be a whole number of seconds from 0 to {high}, got {raw!r}")
    return int(raw)


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower()
    if value and value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _time_zone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"REPORT_TIME_ZONE {name!r} is not a known time zone") from None
    return name


def _emails(raw: str) -> dict[str, str]:
    """FOLLOW_UP_EMAILS: "username=address" pairs, separated by commas."""
    emails: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in raw.split(","))):
        user, sep, address = (text.strip() for text in pair.partition("="))
        if not sep or not user or not address:
            raise ConfigError(
                "FOLLOW_UP_EMAILS: expected username=address pairs separated by commas, "
                f"got {pair!r}"
            )
        emails[user] = _address("FOLLOW_UP_EMAILS", address)
    return emails


def _address(name: str, value: str) -> str:
    """One email address, bare or with a name ("Aftercall <noreply@example.com>"),
    checked only for the mistakes a setting makes (no @, a space, two addresses in one);
    the mail server judges the rest."""
    if not value:
        return value
    found = getaddresses([value])
    address = found[0][1] if len(found) == 1 else ""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address):
        raise ConfigError(f"{name}: {value!r} is not one email address")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name} must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")
