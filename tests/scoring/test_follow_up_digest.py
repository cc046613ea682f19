"""The daily digest of overdue follow-ups: which follow-ups it lists and for whom (both
databases), the signed webhook and the email through a real local SMTP server
(aiosmtpd), each job run by an in-process rq worker on a real Redis."""

from __future__ import annotations

import itertools
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus, validate_job_id
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from werkzeug.wrappers import Request, Response

from aftercall.wiring import PROCESS_WIRING
from core.config import ConfigError, Settings
from core.models import FollowUp, RequestState, SurveyRequest
from core.runtime import Runtime, use_worker_runtime
from dialer.scheduling import release_due_jobs
from phonesim import BackgroundServer
from scoring import alerts, follow_up_digest, jobs
from scoring.follow_up_digest import digest_id, digests
from tests.conftest import PUBLIC_BASE_URL

SECRET = "whsec-digest-secret"
# The cron's run: 07:00 UTC on 24 November.
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
DAY = date(2026, 11, 24)
_calls = itertools.count(1)


def add_follow_up(
    runtime: Runtime,
    *,
    overdue: timedelta,
    owner: str | None = None,
    status: str = "new",
    is_test: bool = False,
    team: str | None = "north",
    agent: str | None = "alice",
    reason: str = "nps 3 <= 6",
) -> int:
    """A follow-up due `overdue` before NOW (negative: due later), with its request."""
    due_at = NOW - overdue
    opened_at = due_at - timedelta(hours=24)
    with runtime.db.session() as session:
        request = SurveyRequest(
            phone="+14155550123",
            source_call_id=f"digest-call-{next(_calls)}",
            agent=agent,
            queue="billing",
            team=team,
            call_ended_at=opened_at - timedelta(minutes=10),
            survey_name="post-call",
            state=RequestState.COMPLETED,
            is_test=is_test,
        )
        session.add(request)
        session.flush()
        follow_up = FollowUp(
            request_id=request.id,
            survey_name="post-call",
            agent=agent,
            queue="billing",
            team=team,
            is_test=is_test,
            reason=reason,
            owner=owner,
            status=status,
            opened_at=opened_at,
            due_at=due_at,
            closed_at=due_at if status in ("resolved", "wont_fix") else None,
            changed_at=opened_at,
            changed_by="system",
        )
        session.add(follow_up)
        session.flush()
        return follow_up.id


def set_status(runtime: Runtime, follow_up_id: int, status: str) -> None:
    with runtime.db.session() as session:
        session.get(FollowUp, follow_up_id).status = status


@pytest.fixture
def book(runtime) -> dict[str, int]:
    """Follow-ups of every kind the digest must tell apart, by name."""
    return {
        "carol_day_late": add_follow_up(runtime, owner="carol", overdue=timedelta(hours=26)),
        "carol_contacted": add_follow_up(
            runtime, owner="carol", status="contacted", overdue=timedelta(hours=2), team="south"
        ),
        "carol_not_yet_due": add_follow_up(runtime, owner="carol", overdue=-timedelta(hours=1)),
        "carol_resolved": add_follow_up(
            runtime, owner="carol", status="resolved", overdue=timedelta(hours=30)
        ),
        "carol_wont_fix": add_follow_up(
            runtime, owner="carol", status="wont_fix", overdue=timedelta(hours=30)
        ),
        "carol_test_call": add_follow_up(
            runtime, owner="carol", is_test=True, overdue=timedelta(hours=40)
        ),
        "dave_just_late": add_follow_up(
            runtime, owner="dave", overdue=timedelta(minutes=30), agent=None, reason="comment"
        ),
        "erin_not_yet_due": add_follow_up(runtime, owner="erin", overdue=-timedelta(hours=3)),
        "nobodys": add_follow_up(runtime, overdue=timedelta(hours=50), team=None),
        "nobodys_test_call": add_follow_up(runtime, is_test=True, overdue=timedelta(hours=50)),
    }


# -- what a digest lists ----------------------------------------------------------------------


def test_one_digest_per_owner_with_overdue_open_follow_ups_then_the_unassigned(runtime, book):
    with runtime.db.session() as session:
        found = digests(session, NOW, public_base_url=PUBLIC_BASE_URL)

    assert [(d.owner, d.overdue) for d in found] == [("carol", 2), ("dave", 1), (None, 1)]
    carol, dave, nobody = found
    # Open (new and contacted), past due, not test calls; the longest overdue first.
    assert [item.id for item in carol.items] == [book["carol_day_late"], book["carol_contacted"]]
    first, second = carol.items
    assert first.hours_overdue == 26.0
    assert first.due_at == NOW - timedelta(hours=26)
    assert first.due_at.tzinfo is not None
    assert (first.status, first.reason, first.survey, first.team, first.agent) == (
        "new",
        "nps 3 <= 6",
        "post-call",
        "north",
        "alice",
    )
    assert first.link == f"{PUBLIC_BASE_URL}/dashboard/follow-ups/{book['carol_day_late']}"
    assert (second.status, second.team, second.hours_overdue) == ("contacted", "south", 2.0)
    assert [(i.id, i.hours_overdue, i.agent) for i in dave.items] == [
        (book["dave_just_late"], 0.5, None)
    ]
    assert [(i.id, i.team) for i in nobody.items] == [(book["nobodys"], None)]
    assert {d.day for d in found} == {DAY}
    assert [d.digest_id for d in found] == [
        "follow-up-digest-2026-11-24-owner-carol",
        "follow-up-digest-2026-11-24-owner-dave",
        "follow-up-digest-2026-11-24-unassigned",
    ]


def test_nothing_overdue_means_no_digests(runtime):
    add_follow_up(runtime, owner="carol", overdue=-timedelta(minutes=1))
    add_follow_up(runtime, owner="carol", status="resolved", overdue=timedelta(days=3))
    with runtime.db.session() as session:
        assert digests(session, NOW) == []


def test_the_day_is_the_contact_centers(runtime):
    add_follow_up(runtime, owner="carol", overdue=timedelta(hours=3))
    with runtime.db.session() as session:
        (digest,) = digests(session, NOW, time_zone="America/Los_Angeles")  # 23:00 on the 23rd
    assert digest.day == date(2026, 11, 23)
    assert digest.digest_id == "follow-up-digest-2026-11-23-owner-carol"


def test_a_digest_lists_the_longest_overdue_and_counts_them_all(runtime, monkeypatch):
    monkeypatch.setattr(follow_up_digest, "MAX_ITEMS", 2)
    ids = [add_follow_up(runtime, owner="carol", overdue=timedelta(hours=h)) for h in (1, 5, 3)]
    add_follow_up(runtime, overdue=timedelta(hours=1))
    with runtime.db.session() as session:
        carol, nobody = digests(session, NOW)
    assert carol.overdue == 3
    assert [item.id for item in carol.items] == [ids[1], ids[2]]
    assert (nobody.overdue, len(nobody.items)) == (1, 1)


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ("carol", "follow-up-digest-2026-11-24-owner-carol"),
        ("carol_2-b", "follow-up-digest-2026-11-24-owner-carol_2-b"),
        (None, "follow-up-digest-2026-11-24-unassigned"),
    ],
)
def test_digest_ids_name_the_owner_and_the_day(owner, expected):
    assert digest_id(owner, DAY) == expected


def test_any_username_makes_a_job_id_of_its_own():
    odd = ["carol.smith", "carol@example.com", "Zoë", "carol smith", "carol/../x"]
    ids = {digest_id(name, DAY) for name in [*odd, "carol_smith", "unassigned", None]}
    assert len(ids) == len(odd) + 3
    for name in [*odd, None]:
        validate_job_id(digest_id(name, DAY))  # rq allows letters, digits, "_" and "-" only
        validate_job_id(follow_up_digest.email_job_id(name, DAY))
    assert digest_id("carol.smith", DAY) != digest_id("carol.smith", DAY + timedelta(days=1))


def test_the_email_lists_each_item_with_its_link(runtime, book):
    with runtime.db.session() as session:
        carol, _, nobody = digests(session, NOW, public_base_url=PUBLIC_BASE_URL)
    message = follow_up_digest.email_message(
        carol,
        sender="Aftercall <noreply@example.com>",
        to="carol@example.com",
        time_zone="Europe/Paris",
        company_name="Acme Support",
        now=NOW,
    )
    assert message["Subject"] == "2 overdue follow-ups for carol (2026-11-24)"
    assert message["Message-ID"].endswith("@example.com>")
    body = message.get_content()
    assert body.splitlines()[:6] == [
        "2 overdue follow-ups owned by carol:",
        "",
        f"#{book['carol_day_late']}  nps 3 <= 6",
        "    team north, agent alice, survey post-call, new",
        # 05:00 UTC on the 23rd, in Paris.
        "    due 2026-11-23 06:00 CET, 26 hours overdue",
        f"    {PUBLIC_BASE_URL}/dashboard/follow-ups/{book['carol_day_late']}",
    ]
    assert body.rstrip().endswith("aftercall for Acme Support")
    unassigned = follow_up_digest.email_message(nobody, sender="a@example.com", to="b@x.org")
    assert unassigned["Subject"] == "1 overdue follow-up with no owner (2026-11-24)"
    assert "2 days overdue" in unassigned.get_content()


# -- the webhook ----------------------------------------------------------------------------


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """The alert receiver (a CRM, a chat bridge): records posts, answers scripted statuses."""

    statuses: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            self.deliveries.append(Delivery(dict(request.headers), request.get_data()))
            status = self.statuses.pop(0) if self.statuses else 204
        return Response(status=status)(environ, start_response)

    def by_owner(self) -> dict[str | None, dict]:
        return {d.json["owner"]: d.json for d in self.deliveries}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = BackgroundServer(receiver).start()
    receiver.url = f"{server.base_url}/hooks/aftercall"
    yield receiver
    server.stop()


def live(runtime: Runtime, redis_url: str, now: datetime = NOW, **overrides: object) -> Runtime:
    """The web, cron and worker processes' runtime, its clock at `now`."""
    settings = runtime.settings.with_overrides(redis_url=redis_url, **overrides)
    return Runtime(
        wiring=PROCESS_WIRING,
        settings=settings,
        db=runtime.db,
        catalog=runtime.catalog,
        now=lambda: now,
    )


@pytest.fixture
def posting(runtime, redis_url, receiver) -> Iterator[Runtime]:
    """Digests posted to `receiver`, no email."""
    configured = live(
        runtime, redis_url, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET
    )
    use_worker_runtime(configured)
    yield configured
    use_worker_runtime(None)


def alert_queue(runtime: Runtime) -> Queue:
    return Queue(alerts.ALERT_QUEUE, connection=runtime.redis)


def work(runtime: Runtime) -> None:
    SimpleWorker([alert_queue(runtime)], connection=runtime.redis).work(burst=True)


def run_due_retries(runtime: Runtime, after: timedelta) -> int:
    released = release_due_jobs(alert_queue(runtime), datetime.now(UTC) + after)
    work(runtime)
    return released


@pytest.mark.redis
def test_the_cron_job_queues_one_webhook_job_per_digest(posting, book):
    assert jobs.send_follow_up_digests() == "3 digests: 3 jobs queued, 0 already queued today"
    queue = alert_queue(posting)
    assert sorted(queue.job_ids) == [
        "follow-up-digest-2026-11-24-owner-carol",
        "follow-up-digest-2026-11-24-owner-dave",
        "follow-up-digest-2026-11-24-unassigned",
    ]
    job = Job.fetch("follow-up-digest-2026-11-24-owner-carol", connection=posting.redis)
    assert job.func_name == "scoring.follow_up_digest.deliver_digest_webhook"
    assert job.args == ("carol", "2026-11-24")
    assert job.retries_left == 5
    assert job.retry_intervals == [10, 30, 60, 300, 900]


@pytest.mark.redis
def test_each_digest_is_posted_signed_like_an_alert(posting, receiver, book):
    follow_up_digest.send_digests(posting)
    work(posting)

    assert len(receiver.deliveries) == 3
    for delivery in receiver.deliveries:
        headers = delivery.headers
        assert headers["Content-Type"] == "application/json"
        assert alerts.verify_signature(
            SECRET,
            headers["X-Aftercall-Timestamp"],
            delivery.body,
            headers["X-Aftercall-Signature"],
        )
        sent_at = datetime.fromisoformat(delivery.json["sent_at"])
        assert sent_at.timestamp() == int(headers["X-Aftercall-Timestamp"])
    carol = receiver.by_owner()["carol"]
    carol.pop("sent_at")
    late, contacted = book["carol_day_late"], book["carol_contacted"]
    assert carol == {
        "event": "follow_up_digest",
        "digest_id": "follow-up-digest-2026-11-24-owner-carol",
        "day": "2026-11-24",
        "owner": "carol",
        "overdue": 2,
        "items": [
            {
                "id": late,
                "status": "new",
                "reason": "nps 3 <= 6",
                "survey": "post-call",
                "team": "north",
                "agent": "alice",
                "due_at": "2026-11-23T05:00:00Z",
                "hours_overdue": 26.0,
                "link": f"{PUBLIC_BASE_URL}/dashboard/follow-ups/{late}",
            },
            {
                "id": contacted,
                "status": "contacted",
                "reason": "nps 3 <= 6",
                "survey": "post-call",
                "team": "south",
                "agent": "alice",
                "due_at": "2026-11-24T05:00:00Z",
                "hours_overdue": 2.0,
                "link": f"{PUBLIC_BASE_URL}/dashboard/follow-ups/{contacted}",
            },
        ],
    }
    nobody = receiver.by_owner()[None]
    assert nobody["digest_id"] == "follow-up-digest-2026-11-24-unassigned"
    assert [item["id"] for item in nobody["items"]] == [book["nobodys"]]
    job = Job.fetch("follow-up-digest-2026-11-24-unassigned", connection=posting.redis)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "delivered: HTTP 204"


@pytest.mark.redis
def test_a_second_run_the_same_day_sends_nothing_more(posting, receiver, book):
    follow_up_digest.send_digests(posting)
    again = follow_up_digest.send_digests(posting)  # queued, not yet run
    work(posting)
    # Run already; carol's item due at 08:00 is overdue by now, and waits for tomorrow's.
    later = follow_up_digest.send_digests(posting, now=NOW + timedelta(hours=2))
    work(posting)
    assert again == later == "3 digests: 0 jobs queued, 3 already queued today"
    assert len(receiver.deliveries) == 3

    tomorrow = live(posting, posting.settings.redis_url, now=NOW + timedelta(days=1))
    use_worker_runtime(tomorrow)
    # A new day, new digest ids: everyone again, and erin, whose item fell due meanwhile.
    assert follow_up_digest.send_digests(tomorrow).startswith("4 digests: 4 jobs queued")
    work(tomorrow)
    assert len(receiver.deliveries) == 7
    assert receiver.by_owner()["carol"]["digest_id"] == "follow-up-digest-2026-11-25-owner-carol"


@pytest.mark.redis
def test_the_job_sends_what_is_overdue_when_it_runs(posting, receiver, book):
    follow_up_digest.send_digests(posting)
    set_status(posting, book["carol_day_late"], "resolved")
    set_status(posting, book["carol_contacted"], "wont_fix")
    work(posting)
    assert set(receiver.by_owner()) == {"dave", None}
    job = Job.fetch("follow-up-digest-2026-11-24-owner-carol", connection=posting.redis)
    assert job.return_value() == "nothing overdue for carol any more: nothing sent"


@pytest.mark.redis
def test_a_failing_receiver_is_retried_with_the_same_digest_id(posting, receiver, runtime):
    add_follow_up(runtime, owner="carol", overdue=timedelta(hours=4))
    receiver.statuses = [503]
    follow_up_digest.send_digests(posting)
    work(posting)
    job_id = "follow-up-digest-2026-11-24-owner-carol"
    assert job_id in ScheduledJobRegistry(queue=alert_queue(posting)).get_job_ids()
    assert run_due_retries(posting, timedelta(seconds=11)) == 1
    first, second = receiver.deliveries
    assert first.json["digest_id"] == second.json["digest_id"] == job_id
    assert Job.fetch(job_id, connection=posting.redis).get_status() == JobStatus.FINISHED


@pytest.mark.redis
@pytest.mark.parametrize("status", [400, 401, 410])
def test_a_refused_digest_is_logged_and_dropped(posting, receiver, runtime, status):
    add_follow_up(runtime, overdue=timedelta(hours=4))
    receiver.statuses = [status]
    follow_up_digest.send_digests(posting)
    work(posting)
    assert run_due_retries(posting, timedelta(hours=1)) == 0
    assert len(receiver.deliveries) == 1
    assert len(FailedJobRegistry(queue=alert_queue(posting))) == 0
    job = Job.fetch("follow-up-digest-2026-11-24-unassigned", connection=posting.redis)
    assert job.return_value() == f"refused: HTTP {status}"


@pytest.mark.redis
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        # A URL without a secret posts nothing nobody could verify; SMTP without a From.
        {"alert_webhook_url": "http://127.0.0.1:9/hook", "smtp_host": "127.0.0.1"},
    ],
)
def test_digests_are_off_without_a_webhook_or_smtp(runtime, redis_url, overrides):
    add_follow_up(runtime, owner="carol", overdue=timedelta(hours=4))
    off = live(runtime, redis_url, **overrides)
    assert follow_up_digest.send_digests(off).startswith("follow-up digests are off")
    assert alert_queue(off).count == 0


# -- email, through a real SMTP server --------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Sink:
    """An SMTP server's handler (aiosmtpd): keeps each message, or refuses recipients
    with a scripted reply ("550 ...": for good, "451 ...": try later)."""

    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    refuse_recipients: list[str] = field(default_factory=list)
    port: int = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_recipients:
            return self.refuse_recipients.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_sink() -> Iterator[Sink]:
    """A local SMTP server without TLS (plain AUTH allowed, as a test may)."""
    sink = Sink(port=free_port())
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        authenticator=sink.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def emailing(runtime, redis_url, smtp_sink) -> Iterator[Runtime]:
    """Digests emailed through `smtp_sink` (STARTTLS off), no webhook."""
    configured = live(
        runtime,
        redis_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_from="Aftercall <noreply@example.com>",
        smtp_starttls=False,
        follow_up_emails={"carol": "carol@example.com", "erin": "erin@example.com"},
        follow_up_digest_email="leads@example.com",
    )
    use_worker_runtime(configured)
    yield configured
    use_worker_runtime(None)


@pytest.mark.redis
def test_each_owner_with_an_address_gets_an_email(emailing, smtp_sink, book):
    note = follow_up_digest.send_digests(emailing)
    # dave has no address in FOLLOW_UP_EMAILS: his digest goes by webhook only.
    assert note == "3 digests: 2 jobs queued, 0 already queued today, 1 without an email address"
    assert sorted(alert_queue(emailing).job_ids) == [
        "follow-up-digest-email-2026-11-24-owner-carol",
        "follow-up-digest-email-2026-11-24-unassigned",
    ]
    work(emailing)

    by_recipient = {tuple(r.rcpt_tos): r for r in smtp_sink.messages}
    assert set(by_recipient) == {("carol@example.com",), ("leads@example.com",)}
    carol = by_recipient[("carol@example.com",)]
    assert carol.mail_from == "noreply@example.com"
    message = carol.message
    assert message["To"] == "carol@example.com"
    assert message["From"] == "Aftercall <noreply@example.com>"
    assert message["Subject"] == "2 overdue follow-ups for carol (2026-11-24)"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Aftercall-Digest-Id"] == "follow-up-digest-2026-11-24-owner-carol"
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    late, contacted = book["carol_day_late"], book["carol_contacted"]
    assert body.splitlines()[:11] == [
        "2 overdue follow-ups owned by carol:",
        "",
        f"#{late}  nps 3 <= 6",
        "    team north, agent alice, survey post-call, new",
        "    due 2026-11-23 05:00 UTC, 26 hours overdue",
        f"    {PUBLIC_BASE_URL}/dashboard/follow-ups/{late}",
        "",
        f"#{contacted}  nps 3 <= 6",
        "    team south, agent alice, survey post-call, contacted",
        "    due 2026-11-24 05:00 UTC, 2 hours overdue",
        f"    {PUBLIC_BASE_URL}/dashboard/follow-ups/{contacted}",
    ]
    for test_call in ("carol_test_call", "carol_resolved", "carol_not_yet_due"):
        assert f"/follow-ups/{book[test_call]}\n" not in body
    leads = by_recipient[("leads@example.com",)].message
    assert leads["Subject"] == "1 overdue follow-up with no owner (2026-11-24)"
    assert f"{PUBLIC_BASE_URL}/dashboard/follow-ups/{book['nobodys']}" in leads.get_content()
    assert smtp_sink.logins == []  # no SMTP_USERNAME: no AUTH

    job = Job.fetch("follow-up-digest-email-2026-11-24-owner-carol", connection=emailing.redis)
    assert job.return_value() == "emailed to carol@example.com"
    # The cron running again the same day emails nobody twice.
    assert follow_up_digest.send_digests(emailing).startswith("3 digests: 0 jobs queued, 2 already")
    work(emailing)
    assert len(smtp_sink.messages) == 2


@pytest.mark.redis
def test_webhook_and_email_go_out_side_by_side(emailing, smtp_sink, receiver, runtime):
    add_follow_up(runtime, owner="carol", overdue=timedelta(hours=4))
    both = live(
        emailing,
        emailing.settings.redis_url,
        alert_webhook_url=receiver.url,
        alert_webhook_secret=SECRET,
    )
    use_worker_runtime(both)
    assert follow_up_digest.send_digests(both).startswith("1 digests: 2 jobs queued")
    work(both)
    assert [d.json["owner"] for d in receiver.deliveries] == ["carol"]
    assert [r.rcpt_tos for r in smtp_sink.messages] == [["carol@example.com"]]


@pytest.mark.redis
def test_smtp_username_logs_in_first(emailing, smtp_sink, runtime):
    add_follow_up(runtime, owner="carol", overdue=timedelta(hours=4))
    with_login = live(
        emailing, emailing.settings.redis_url, smtp_username="aftercall", smtp_password="s3cret"
    )
    assert follow_up_digest.email_digest(with_login, "carol", "2026-11-24") == (
        "emailed to carol@example.com"
    )
    assert smtp_sink.logins == [(b"aftercall", b"s3cret")]
    assert len(smtp_sink.messages) == 1


@pytest.mark.redis
def test_a_recipient_refused_for_good_is_dropped(emailing, smtp_sink, runtime):
    add_follow_up(runtime, owner="carol", overdue=timedelta(hours=4))
    smtp_sink.refuse_recipients = ["550 5.1.1 No such mailbox"]
    follow_up_digest.send_digests(emailing)
    work(emailing)
    assert run_due_retries(emailing, timedelta(hours=1)) == 0
    job = Job.fetch("follow-up-digest-email-2026-11-24-owner-carol", connection=emailing.redis)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "refused: SMTP 550"
    assert smtp_sink.messages == []


@pytest.mark.redis
def test_a_mail_server_saying_try_later_is_retried(emailing, smtp_sink, runtime):
    add_follow_up(runtime, owner="carol", overdue=timedelta(hours=4))
    smtp_sink.refuse_recipients = ["451 4.3.0 Try again later"]
    follow_up_digest.send_digests(emailing)
    work(emailing)
    job_id = "follow-up-digest-email-2026-11-24-owner-carol"
    assert job_id in ScheduledJobRegistry(queue=alert_queue(emailing)).get_job_ids()
    assert run_due_retries(emailing, timedelta(seconds=11)) == 1
    assert [r.rcpt_tos for r in smtp_sink.messages] == [["carol@example.com"]]
    assert Job.fetch(job_id, connection=emailing.redis).get_status() == JobStatus.FINISHED


@pytest.mark.redis
def test_starttls_required_and_not_offered_sends_nothing_in_clear(emailing, smtp_sink, runtime):
    add_follow_up(runtime, owner="carol", overdue=timedelta(hours=4))
    # STARTTLS on (the default), and the sink does not offer it.
    strict = live(emailing, emailing.settings.redis_url, smtp_starttls=True)
    use_worker_runtime(strict)
    follow_up_digest.send_digests(strict)
    work(strict)
    job = Job.fetch("follow-up-digest-email-2026-11-24-owner-carol", connection=strict.redis)
    assert job.get_status() == JobStatus.SCHEDULED  # retried: the operator may fix the server
    assert smtp_sink.messages == []


# -- settings ----------------------------------------------------------------------------------


def test_smtp_and_digest_settings_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "FOLLOW_UP_EMAILS": "carol=carol@example.com, dave.b = Dave <dave@example.org>",
            "FOLLOW_UP_DIGEST_EMAIL": "leads@example.com",
            "SMTP_HOST": "smtp.example.com",
            "SMTP_PORT": "2525",
            "SMTP_USERNAME": "aftercall",
            "SMTP_PASSWORD": "s3cret",
            "SMTP_FROM": "Aftercall <noreply@example.com>",
            "SMTP_STARTTLS": "false",
        }
    )
    assert settings.follow_up_emails == {
        "carol": "carol@example.com",
        "dave.b": "Dave <dave@example.org>",
    }
    assert settings.follow_up_digest_email == "leads@example.com"
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_from) == (
        "smtp.example.com",
        2525,
        "Aftercall <noreply@example.com>",
    )
    assert (settings.smtp_username, settings.smtp_password) == ("aftercall", "s3cret")
    assert settings.smtp_starttls is False


def test_smtp_defaults_are_the_submission_port_with_starttls():
    settings = Settings.from_env({})
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == ("", 587, True)
    assert settings.follow_up_emails == {}
    assert not follow_up_digest.email_enabled(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FOLLOW_UP_EMAILS", "carol"),
        ("FOLLOW_UP_EMAILS", "carol="),
        ("FOLLOW_UP_EMAILS", "=carol@example.com"),
        ("FOLLOW_UP_EMAILS", "carol=carol.example.com"),
        ("FOLLOW_UP_DIGEST_EMAIL", "leads@example.com; boss@example.com"),
        ("SMTP_FROM", "noreply"),
        ("SMTP_PORT", "0"),
        ("SMTP_PORT", "70000"),
        ("SMTP_PORT", "smtp"),
        ("SMTP_STARTTLS", "maybe"),
    ],
)
def test_bad_digest_settings_are_refused_naming_the_setting(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
