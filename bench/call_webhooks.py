"""The web tier's CPU for one whole survey call, webhook by webhook, in process.

A survey call is more than its keypad answers: Twilio also posts the start of the call
and four status callbacks (initiated, ringing, in-progress, completed). This drives
`--calls` whole calls through the real app (production settings, PostgreSQL, Redis,
signed posts, Flask's test client: no gunicorn, no network), each as Twilio would: the
status callbacks, the start webhook, then every question's Gather action taken from the
TwiML the app returned, until it hangs up. Half the callers are promoters (NPS 9, CSAT
5), half detractors (NPS 3, CSAT 2, then the recorded comment, which queues an alert).

Prints the CPU time of this process per webhook kind and per call, each beside the bare
constant-TwiML endpoint's (`bench.constant_twiml`) for the same signed post in the same
process: the floor of Flask and the test client. Sizing: web CPU per call x calls per
second = cores the web tier needs (docs/deployment.md).

With `--in-call`, the same number of in-call surveys follow (docs/in-call.md): each
customer transferred to the survey number with the token in the URL (the transfer
webhook finds the support call, opens the inbound attempt and starts the survey), the
same answers, and the number's one completed status callback; then their cost per call
beside the callback's, measured in the same run.

    python -m bench.call_webhooks --calls 300 --in-call
"""

from __future__ import annotations

import argparse
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from redis import Redis
from sqlalchemy import delete, func, select, update
from twilio.request_validator import RequestValidator

from aftercall.web import create_app
from bench import constant_twiml
from bench.fresh_database import reset
from bench.webhook_load import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    FROM_NUMBER,
    HISTORY,
    PUBLIC_BASE_URL,
    SEED_CHUNK,
    SeededCall,
    production_env,
    seed_calls,
)
from core import transfer_token
from core.config import Settings
from core.db import Database
from core.models import CallAttempt, RequestState, SurveyMode, SurveyRequest
from dialer.chunking import chunks

PROMOTER = {"nps": "9", "csat": "5"}
DETRACTOR = {"nps": "3", "csat": "2"}
STAMP = "Wed, 02 Dec 2026 07:00:00 +0000"
# Issue 19: the whole answered call's web CPU at most 3x the bare endpoint's.
TARGET_RATIO = 3.0


class Caller:
    """Twilio's side of the calls: signed posts, CPU time per kind of webhook."""

    def __init__(self, app, bare_app) -> None:
        self.client = app.test_client()
        self.bare = bare_app.test_client()
        self.validator = RequestValidator(AUTH_TOKEN)
        self.cpu: dict[str, float] = defaultdict(float)
        self.bare_cpu: dict[str, float] = defaultdict(float)
        self.posts: dict[str, int] = defaultdict(int)

    def post(self, kind: str, url: str, params: dict[str, str]) -> bytes:
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        started = time.process_time()
        reply = self.client.post(path, data=params, headers=headers)
        self.cpu[kind] += time.process_time() - started
        if reply.status_code != 200:
            raise SystemExit(f"{kind}: {reply.status_code} {reply.data[:200]!r}")
        started = time.process_time()
        self.bare.post("/twiml", data=params, headers=headers)
        self.bare_cpu[kind] += time.process_time() - started
        self.posts[kind] += 1
        return reply.data

    def call(self, seeded: SeededCall, keys: dict[str, str]) -> None:
        base = f"{PUBLIC_BASE_URL}/voice/attempts/{seeded.attempt_id}"
        params = {
            "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": seeded.call_sid,
            "Called": seeded.phone, "Caller": FROM_NUMBER, "Direction": "outbound-api",
            "From": FROM_NUMBER, "To": seeded.phone,
        }  # fmt: skip
        for sequence, status in enumerate(("initiated", "ringing", "in-progress")):
            self._status(base, params, status, sequence)
        twiml = self.post("start", f"{base}/start", {**params, "CallStatus": "in-progress"})
        self._survey(twiml, params, keys)
        self._status(base, params, "completed", 3, CallDuration="40", SipResponseCode="200")

    def transfer(self, seeded: SeededCall, token: str, keys: dict[str, str]) -> None:
        """An in-call survey as Twilio posts it: the survey number's voice URL, with the
        token a <Redirect> carried, then the survey, then the number's status callback."""
        params = {
            "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": seeded.call_sid,
            "Called": FROM_NUMBER, "Caller": seeded.phone, "Direction": "inbound",
            "From": seeded.phone, "To": FROM_NUMBER,
        }  # fmt: skip
        url = f"{PUBLIC_BASE_URL}/ivr/inbound?token={token}"
        twiml = self.post("transfer", url, {**params, "CallStatus": "ringing"})
        self._survey(twiml, params, keys)
        form = {**params, "CallStatus": "completed", "CallDuration": "40", "Timestamp": STAMP,
                "SequenceNumber": "0", "CallbackSource": "call-progress-events"}  # fmt: skip
        self.post("status (completed)", f"{PUBLIC_BASE_URL}/ivr/inbound/status", form)

    def _survey(self, twiml: bytes, params: dict[str, str], keys: dict[str, str]) -> None:
        while (action := _next_action(twiml)) is not None:
            url, recording = action
            form = {**params, "CallStatus": "in-progress"}
            if recording:
                form |= {"RecordingUrl": "https://api.twilio.test/rec/RE1", "RecordingSid":
                         "RE" + "1" * 32, "RecordingDuration": "7", "Digits": "#"}  # fmt: skip
                twiml = self.post("comment", url, form)
            else:
                key = urlsplit(url).path.rsplit("/", 1)[-1]
                twiml = self.post("answer", url, {**form, "Digits": keys[key]})

    def _status(self, base: str, params: dict[str, str], status: str, sequence: int, **more):
        kind = "status (completed)" if status == "completed" else "status (progress)"
        form = {**params, "CallStatus": status, "SequenceNumber": str(sequence),
                "Timestamp": STAMP, "CallbackSource": "call-progress-events", **more}  # fmt: skip
        self.post(kind, f"{base}/status", form)


def _next_action(twiml: bytes) -> tuple[str, bool] | None:
    """The URL Twilio would post next (a Gather's or a Record's action), or None when
    the TwiML hangs up."""
    root = ET.fromstring(twiml)
    for verb in ("Gather", "Record"):
        element = root.find(verb)
        if element is not None:
            return element.get("action"), verb == "Record"
    return None


def fresh_calls(url: str, count: int, history: int = 0) -> list[SeededCall]:
    """`count` requests whose first call is being placed: nothing answered, attempts
    only queued; their survey version pinned, as intake pins it. After `history`
    surveys answered before (bench.webhook_load.seed_history)."""
    seeded = seed_calls(url, count, history)
    ids = [call.request_id for call in seeded]
    db = Database(url)
    with db.session() as session:
        for chunk in chunks(ids, SEED_CHUNK):
            session.execute(
                update(SurveyRequest)
                .where(SurveyRequest.id.in_(chunk))
                .values(state=RequestState.CALLING)
            )
            session.execute(
                update(CallAttempt)
                .where(CallAttempt.request_id.in_(chunk))
                .values(status="queued", answered_by=None, started_at=None, answered_at=None)
            )
    db.dispose()
    return seeded


def waiting_for_transfer(url: str, seeded: list[SeededCall], secret: str) -> list[str]:
    """Make `seeded`'s requests in-call ones waiting for their customer's transfer, as
    intake leaves them (no attempt yet: the transfer opens it); their tokens."""
    ids = [call.request_id for call in seeded]
    db = Database(url)
    with db.session() as session:
        session.execute(delete(CallAttempt).where(CallAttempt.request_id.in_(ids)))
        session.execute(
            update(SurveyRequest)
            .where(SurveyRequest.id.in_(ids))
            .values(
                state=RequestState.AWAITING_TRANSFER,
                mode=SurveyMode.IN_CALL,
                calls_placed=0,
                transfer_expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
    db.dispose()
    return [transfer_token.issue(secret, request_id) for request_id in ids]


def _table(caller: Caller, n: int, kinds: tuple[str, ...], title: str) -> float:
    """Print one mode's table; its web CPU per call in ms."""
    print(title)
    print(f"{'webhook':<20}{'posts/call':>11}{'ms/post':>9}{'bare ms':>9}{'ms/call':>9}")
    total = bare_total = 0.0
    for kind in kinds:
        posts, cpu, bare = caller.posts[kind], caller.cpu[kind], caller.bare_cpu[kind]
        total, bare_total = total + cpu, bare_total + bare
        print(f"{kind:<20}{posts / n:>11.1f}{cpu / posts * 1000:>9.2f}"
              f"{bare / posts * 1000:>9.2f}{cpu / n * 1000:>9.2f}")  # fmt: skip
    posts = sum(caller.posts.values())
    print(f"{'whole call':<20}{posts / n:>11.1f}{total / posts * 1000:>9.2f}"
          f"{bare_total / posts * 1000:>9.2f}{total / n * 1000:>9.2f}")  # fmt: skip
    ratio = total / bare_total
    print(f"ratio to the bare endpoint: {ratio:.1f}x the CPU for the same posts")
    print(
        f"target (issue 19): a whole call at most {TARGET_RATIO:g}x the bare endpoint's CPU: "
        f"{'met' if ratio <= TARGET_RATIO else 'NOT met'} ({ratio:.2f}x)"
    )
    return total / n * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--in-call", action="store_true", help="then as many in-call surveys")
    parser.add_argument(
        "--history", type=int, default=HISTORY, help="surveys answered before the run"
    )
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("measured against PostgreSQL, as deployed")

    reset(args.database_url)
    Redis.from_url(args.redis_url).flushdb()
    warmup = 20
    runs = 2 if args.in_call else 1
    calls = fresh_calls(args.database_url, runs * (warmup + args.calls), args.history)
    settings = Settings.from_env(production_env(args.database_url, args.redis_url))
    app = create_app(settings)
    callback_calls, in_call_calls = calls[: warmup + args.calls], calls[warmup + args.calls :]
    tokens = waiting_for_transfer(args.database_url, in_call_calls, settings.secret_key)
    caller = Caller(app, constant_twiml.create_app())
    for i, seeded in enumerate(callback_calls[:warmup]):
        caller.call(seeded, PROMOTER if i % 2 else DETRACTOR)
    caller = Caller(app, constant_twiml.create_app())
    for i, seeded in enumerate(callback_calls[warmup:]):
        caller.call(seeded, PROMOTER if i % 2 else DETRACTOR)

    n = args.calls
    callback_ms = _table(
        caller,
        n,
        ("status (progress)", "start", "answer", "comment", "status (completed)"),
        f"{n} whole survey calls, half promoters, half detractors (CPU of this process)",
    )
    if args.in_call:
        transfer = Caller(app, constant_twiml.create_app())
        for i, (seeded, token) in enumerate(zip(in_call_calls[:warmup], tokens, strict=False)):
            transfer.transfer(seeded, token, PROMOTER if i % 2 else DETRACTOR)
        transfer = Caller(app, constant_twiml.create_app())
        for i, (seeded, token) in enumerate(
            zip(in_call_calls[warmup:], tokens[warmup:], strict=True)
        ):
            transfer.transfer(seeded, token, PROMOTER if i % 2 else DETRACTOR)
        in_call_ms = _table(
            transfer,
            n,
            ("transfer", "answer", "comment", "status (completed)"),
            f"\n{n} in-call surveys, the same answers (transferred with the token)",
        )
        print(f"in-call survey / callback survey, web CPU per call: {in_call_ms / callback_ms:.2f}")
    states = outcomes(args.database_url)
    print(f"requests afterwards: {states}")
    return 0 if states == {RequestState.COMPLETED.value: len(calls)} else 1


def outcomes(url: str) -> dict[str, int]:
    """Every call was answered to the end: each request should be completed (the
    seeded history's are not counted)."""
    db = Database(url)
    with db.session() as session:
        rows = session.execute(
            select(SurveyRequest.state, func.count())
            .where(SurveyRequest.source_call_id.like("load-%"))
            .group_by(SurveyRequest.state)
        ).all()
    db.dispose()
    return {state.value: count for state, count in rows}


if __name__ == "__main__":
    raise SystemExit(main())
