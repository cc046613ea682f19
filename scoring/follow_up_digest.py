"""The daily digest of overdue follow-ups: one message per owner listing the follow-ups
they own that are past their due time, and one for those nobody owns, so that nothing
overdue is forgotten (issue 18, "close the loop").

- `digests()` reads what is overdue now: open (new or contacted), past `due_at`, not an
  admin's test call; grouped by owner, the longest overdue first, at most `MAX_ITEMS`
  listed per digest (the count says how many there are in all).
- `send_digests()` is the daily cron's work (scoring.jobs.send_follow_up_digests): it
  queues, on the `alerts` queue, one webhook job per digest and, when SMTP is set up and
  the owner has an address, one email job. Each job id names the owner and the day, and
  is enqueued with rq's atomic `unique=True`, so a cron that runs twice on one day
  sends each owner one digest.
- The jobs read the digest again when they run (a follow-up resolved meanwhile drops
  out), then post it signed exactly as a detractor alert is (scoring.alerts: the same
  URL, secret, headers and retries; receivers tell the two apart by `event`), or email
  it with smtplib. A failure that may pass raises, so rq retries with the alerts'
  backoff; a refusal that will not change (an HTTP 4xx other than 408/429, an SMTP 5xx)
  is logged and dropped, as alerts are.

Delivery is at least once: every post of one digest carries the same `digest_id` for a
receiver to drop repeats. Nothing here changes a follow-up; owners act on the dashboard.
docs/alerts.md ("Daily digest of overdue follow-ups") is the operator's manual.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

import requests
from rq.exceptions import DuplicateJobError
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.models import FollowUp
from core.runtime import Runtime, worker_runtime
from scoring.alerts import (
    ALERT_QUEUE,
    DONE_JOB_TTL_SECONDS,
    FAILED_JOB_TTL_SECONDS,
    POST_TIMEOUT_SECONDS,
    RETRY,
    alerts_enabled,
    encode,
    is_permanent_refusal,
    signature,
)
from scoring.follow_ups import OPEN

log = logging.getLogger(__name__)

EVENT = "follow_up_digest"
WEBHOOK_JOB = "scoring.follow_up_digest.deliver_digest_webhook"
EMAIL_JOB = "scoring.follow_up_digest.deliver_digest_email"
# A digest is read by a person: past a hundred items the rest are the same story, and
# the dashboard's list has them all. The count in the digest is never cut.
MAX_ITEMS = 100
SMTP_TIMEOUT_SECONDS = 30
# rq job ids allow letters, digits, underscores and dashes; a username may hold more.
_JOB_ID_SAFE = re.compile(r"[A-Za-z0-9_-]+")


class DigestDeliveryError(Exception):
    """The receiver did not take the digest this time; rq retries the job."""


@dataclass(frozen=True)
class OverdueItem:
    """One overdue follow-up, as a digest lists it."""

    id: int
    status: str
    reason: str
    survey: str
    team: str | None
    agent: str | None
    due_at: datetime
    hours_overdue: float
    link: str  # its page on the dashboard (sign-in needed)


@dataclass(frozen=True)
class Digest:
    """One owner's overdue follow-ups on one day; `owner` None: those nobody owns."""

    owner: str | None
    day: date
    overdue: int  # how many there are; `items` lists at most MAX_ITEMS of them
    items: tuple[OverdueItem, ...]

    @property
    def digest_id(self) -> str:
        return digest_id(self.owner, self.day)


# -- what is overdue --------------------------------------------------------------------------


def digests(
    session: Session, now: datetime, *, public_base_url: str = "", time_zone: str = "UTC"
) -> list[Digest]:
    """Today's digests: one per owner with overdue follow-ups, by username, then one for
    the unassigned ones. `time_zone` (the report time zone) says which day "today" is,
    for the digest ids; `public_base_url` starts each item's link."""
    day = now.astimezone(ZoneInfo(time_zone)).date()
    grouped: dict[str | None, list[Any]] = {}
    for row in _overdue_rows(session, now):
        grouped.setdefault(row.owner, []).append(row)
    owners = sorted(grouped, key=lambda owner: (owner is None, owner or ""))
    return [_digest(owner, day, grouped[owner], now, public_base_url) for owner in owners]


def digest_of(
    session: Session, owner: str | None, day: date, now: datetime, *, public_base_url: str = ""
) -> Digest | None:
    """One owner's digest of `day`, read as of `now` (the job's run); None when nothing
    they own is overdue any more."""
    who = FollowUp.owner.is_(None) if owner is None else FollowUp.owner == owner
    rows = _overdue_rows(session, now, who)
    return _digest(owner, day, rows, now, public_base_url) if rows else None


def _overdue_rows(session: Session, now: datetime, *where: ColumnElement[bool]) -> list[Any]:
    """The overdue follow-ups, at most MAX_ITEMS per owner (the longest overdue), each row
    with its owner's count of them all: one query, ranked and counted in SQL."""
    ranked = (
        select(
            FollowUp.id,
            FollowUp.owner,
            FollowUp.status,
            FollowUp.reason,
            FollowUp.survey_name,
            FollowUp.team,
            FollowUp.agent,
            FollowUp.due_at,
            func.row_number()
            .over(partition_by=FollowUp.owner, order_by=(FollowUp.due_at, FollowUp.id))
            .label("rank"),
            func.count().over(partition_by=FollowUp.owner).label("overdue"),
        )
        .where(
            FollowUp.status.in_(OPEN),
            FollowUp.due_at < now,
            # An admin's test call's follow-up is nobody's to chase.
            FollowUp.is_test.is_(False),
            *where,
        )
        .subquery()
    )
    return list(
        session.execute(
            select(ranked).where(ranked.c.rank <= MAX_ITEMS).order_by(ranked.c.owner, ranked.c.rank)
        )
    )


def _digest(
    owner: str | None, day: date, rows: list[Any], now: datetime, public_base_url: str
) -> Digest:
    items = tuple(
        OverdueItem(
            id=row.id,
            status=row.status,
            reason=row.reason,
            survey=row.survey_name,
            team=row.team,
            agent=row.agent,
            due_at=row.due_at,
            hours_overdue=round((now - row.due_at).total_seconds() / 3600, 1),
            link=f"{public_base_url}/dashboard/follow-ups/{row.id}",
        )
        for row in rows
    )
    return Digest(owner=owner, day=day, overdue=rows[0].overdue, items=items)


# -- ids: one digest per owner per day ------------------------------------------------------


def digest_id(owner: str | None, day: date) -> str:
    """The digest's id in the webhook, and its webhook job's id: stable per owner and day,
    so a repeat (a retry, a second cron run) is recognisable and queued once."""
    return f"follow-up-digest-{day.isoformat()}-{_who(owner)}"


def email_job_id(owner: str | None, day: date) -> str:
    return f"follow-up-digest-email-{day.isoformat()}-{_who(owner)}"


def _who(owner: str | None) -> str:
    """The owner in a job id. A username rq's ids cannot hold ("carol.smith") keeps a
    readable form plus a hash of the real name; the different prefix keeps it from
    colliding with a username that happens to look like that form."""
    if owner is None:
        return "unassigned"
    if _JOB_ID_SAFE.fullmatch(owner):
        return f"owner-{owner}"
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", owner)[:60]
    return f"owner_{readable}_{hashlib.sha256(owner.encode()).hexdigest()[:12]}"


# -- the cron's side: queue today's digests -------------------------------------------------


def email_enabled(settings: Settings) -> bool:
    return bool(settings.smtp_host and settings.smtp_from)


def recipient(settings: Settings, owner: str | None) -> str:
    """Where `owner`'s digest is emailed (FOLLOW_UP_EMAILS, FOLLOW_UP_DIGEST_EMAIL for the
    unassigned ones); "" when nowhere."""
    if owner is None:
        return settings.follow_up_digest_email
    return settings.follow_up_emails.get(owner, "")


def send_digests(runtime: Runtime, now: datetime | None = None) -> str:
    """Queue today's digests on the `alerts` queue: a webhook job per digest when alerts
    are configured, an email job per digest with an address when SMTP is. Returns a note
    for rq's result. Redis errors raise: this runs as a job, and rq records the failure."""
    settings = runtime.settings
    if settings.alert_webhook_url and not settings.alert_webhook_secret:
        log.error("ALERT_WEBHOOK_URL is set but ALERT_WEBHOOK_SECRET is not: no digest webhooks")
    if settings.smtp_host and not settings.smtp_from:
        log.error("SMTP_HOST is set but SMTP_FROM is not: follow-up digests are not emailed")
    webhook, email = alerts_enabled(settings), email_enabled(settings)
    if not (webhook or email):
        return "follow-up digests are off (neither the alert webhook nor SMTP is configured)"
    now = now or runtime.now()
    with runtime.db.session() as session:
        found = digests(
            session,
            now,
            public_base_url=settings.public_base_url,
            time_zone=settings.report_time_zone,
        )
    queue = runtime.queue(ALERT_QUEUE)
    queued = repeated = without_address = 0
    for digest in found:
        if webhook:
            if _enqueue(queue, WEBHOOK_JOB, digest, digest.digest_id):
                queued += 1
            else:
                repeated += 1
        if email:
            if not recipient(settings, digest.owner):
                without_address += 1
                log.warning(
                    "no email address for the digest of %s (FOLLOW_UP_EMAILS, "
                    "FOLLOW_UP_DIGEST_EMAIL): not emailed",
                    _label(digest.owner),
                )
            elif _enqueue(queue, EMAIL_JOB, digest, email_job_id(digest.owner, digest.day)):
                queued += 1
            else:
                repeated += 1
    note = f"{len(found)} digests: {queued} jobs queued, {repeated} already queued today"
    if without_address:
        note += f", {without_address} without an email address"
    log.info("follow-up digests: %s", note)
    return note


def _enqueue(queue: Any, job: str, digest: Digest, job_id: str) -> bool:
    """Queue one delivery; False when a job of that id exists (sent or sending today)."""
    try:
        queue.enqueue(
            job,
            digest.owner,
            digest.day.isoformat(),
            job_id=job_id,
            unique=True,
            retry=RETRY,
            # Kept a day: while it is, its id keeps a second cron run from sending again.
            result_ttl=DONE_JOB_TTL_SECONDS,
            failure_ttl=FAILED_JOB_TTL_SECONDS,
            description=f"follow-up digest of {_label(digest.owner)} for {digest.day}",
        )
    except DuplicateJobError:
        return False
    return True


# -- the worker's side: the rq jobs -----------------------------------------------------------


def deliver_digest_webhook(owner: str | None, day: str) -> str:
    """The rq job: post one owner's digest to the alert webhook."""
    return post_digest(worker_runtime(), owner, day)


def deliver_digest_email(owner: str | None, day: str) -> str:
    """The rq job: email one owner's digest."""
    return email_digest(worker_runtime(), owner, day)


def post_digest(runtime: Runtime, owner: str | None, day: str, now: float | None = None) -> str:
    """Post the digest signed as alerts are. Raises DigestDeliveryError (or requests' own
    errors) when a retry may succeed; returns a note when delivered, refused for good,
    or when there is nothing left to send."""
    settings = runtime.settings
    if not alerts_enabled(settings):
        log.warning("digest of %s dropped: the alert webhook is not configured", _label(owner))
        return "alerts are off"
    digest = _current(runtime, owner, day)
    if digest is None:
        return f"nothing overdue for {_label(owner)} any more: nothing sent"
    timestamp = int(time.time() if now is None else now)
    body = encode(webhook_payload(digest, sent_at=timestamp))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "aftercall-alerts",
        "X-Aftercall-Timestamp": str(timestamp),
        "X-Aftercall-Signature": signature(settings.alert_webhook_secret, timestamp, body),
    }
    # No redirects: requests would follow a 301/302 with a GET and drop the body.
    response = requests.post(
        settings.alert_webhook_url,
        data=body,
        headers=headers,
        timeout=POST_TIMEOUT_SECONDS,
        allow_redirects=False,
    )
    status = response.status_code
    if 200 <= status < 300:
        log.info("%s delivered (HTTP %s)", digest.digest_id, status)
        return f"delivered: HTTP {status}"
    if is_permanent_refusal(status):
        log.error(
            "the alert receiver refused %s with HTTP %s, not retrying: %s",
            digest.digest_id,
            status,
            response.text[:200],
        )
        return f"refused: HTTP {status}"
    raise DigestDeliveryError(f"{digest.digest_id}: alert receiver answered HTTP {status}")


def email_digest(runtime: Runtime, owner: str | None, day: str) -> str:
    """Email the digest to the owner's address. smtplib's errors raise when a retry may
    succeed (network, a 4xx "try later"); a 5xx refusal is logged and returned."""
    settings = runtime.settings
    to = recipient(settings, owner)
    if not email_enabled(settings) or not to:
        log.warning("digest of %s not emailed: no SMTP or no address configured", _label(owner))
        return "email is off for this digest"
    digest = _current(runtime, owner, day)
    if digest is None:
        return f"nothing overdue for {_label(owner)} any more: nothing sent"
    message = email_message(
        digest,
        sender=settings.smtp_from,
        to=to,
        time_zone=settings.report_time_zone,
        company_name=settings.company_name,
    )
    return send_email(settings, message, digest.digest_id)


def _current(runtime: Runtime, owner: str | None, day: str) -> Digest | None:
    with runtime.db.session() as session:
        return digest_of(
            session,
            owner,
            date.fromisoformat(day),
            runtime.now(),
            public_base_url=runtime.settings.public_base_url,
        )


# -- the two forms of a digest --------------------------------------------------------------


def webhook_payload(digest: Digest, *, sent_at: int) -> dict[str, Any]:
    """The digest's JSON; docs/alerts.md describes every field."""
    return {
        "event": EVENT,
        "digest_id": digest.digest_id,
        "day": digest.day.isoformat(),
        "owner": digest.owner,
        "overdue": digest.overdue,
        "items": [
            {
                "id": item.id,
                "status": item.status,
                "reason": item.reason,
                "survey": item.survey,
                "team": item.team,
                "agent": item.agent,
                "due_at": _iso(item.due_at),
                "hours_overdue": item.hours_overdue,
                "link": item.link,
            }
            for item in digest.items
        ],
        "sent_at": _iso(datetime.fromtimestamp(sent_at, UTC)),
    }


def email_message(
    digest: Digest,
    *,
    sender: str,
    to: str,
    time_zone: str = "UTC",
    company_name: str = "",
    now: datetime | None = None,
) -> EmailMessage:
    """The digest as a plain-text email; times in the contact center's zone."""
    zone = ZoneInfo(time_zone)
    count = f"{digest.overdue} overdue follow-up{'' if digest.overdue == 1 else 's'}"
    if digest.owner is None:
        subject = f"{count} with no owner ({digest.day.isoformat()})"
        opening = f"{count} nobody owns:"
        closing = "Give each an owner on its page, or close it there."
    else:
        subject = f"{count} for {digest.owner} ({digest.day.isoformat()})"
        opening = f"{count} owned by {digest.owner}:"
        closing = (
            "Call each customer back, then mark the follow-up contacted or resolved on its page."
        )
    lines = [opening, ""]
    for item in digest.items:
        where = ", ".join(
            part
            for part in (
                f"team {item.team}" if item.team else "",
                f"agent {item.agent}" if item.agent else "",
                f"survey {item.survey}",
                item.status,
            )
            if part
        )
        due = item.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        lines += [
            f"#{item.id}  {item.reason}",
            f"    {where}",
            f"    due {due}, {_overdue_words(item.hours_overdue)}",
            f"    {item.link}",
            "",
        ]
    if digest.overdue > len(digest.items):
        lines += [
            f"... and {digest.overdue - len(digest.items)} more, the dashboard lists them all.",
            "",
        ]
    lines += [closing, "", "-- ", f"aftercall{f' for {company_name}' if company_name else ''}"]

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(now or datetime.now(UTC))
    # The sender's own domain: make_msgid's default asks the resolver for this host's
    # name, which can take seconds in a container.
    message["Message-ID"] = make_msgid(domain=_domain(sender))
    # RFC 3834: tells out-of-office responders not to answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Aftercall-Digest-Id"] = digest.digest_id
    message.set_content("\n".join(lines))
    return message


def send_email(settings: Settings, message: EmailMessage, what: str) -> str:
    """Send through SMTP_HOST: STARTTLS first unless SMTP_STARTTLS is off (a server that
    does not offer it then fails the job rather than receive the message in clear), a
    login when SMTP_USERNAME is set."""
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(_smtp_refusal(code) for code in codes):
            log.error("the mail server refused %s's recipient, not retrying: %s", what, exc)
            return f"refused: SMTP {codes[0]}"
        raise
    except smtplib.SMTPResponseException as exc:
        if _smtp_refusal(exc.smtp_code):
            log.error("the mail server refused %s, not retrying: %s", what, exc)
            return f"refused: SMTP {exc.smtp_code}"
        raise
    log.info("%s emailed to %s", what, message["To"])
    return f"emailed to {message['To']}"


def _smtp_refusal(code: int) -> bool:
    """SMTP's permanent failures are its 5xx replies (a 4xx there means "try later", the
    reverse of HTTP's meaning): an unknown mailbox, a sender the server will not relay
    for, a wrong password. Sending again unchanged will not help."""
    return 500 <= code < 600


def _domain(address: str) -> str | None:
    found = getaddresses([address])
    return (found[0][1].rpartition("@")[2] or None) if found else None


def _overdue_words(hours: float) -> str:
    if hours < 1:
        return "less than an hour overdue"
    if hours < 48:
        whole = int(hours)
        return f"{whole} hour{'' if whole == 1 else 's'} overdue"
    return f"{int(hours // 24)} days overdue"


def _label(owner: str | None) -> str:
    return "the unassigned follow-ups" if owner is None else owner


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
