"""What interpreting a spoken answer costs, beside the answer webhook that does it.

Drives `--calls` spoken NPS answers through the real app (production settings,
PostgreSQL, Redis, signed posts, Flask's test client), each a Gather action carrying
`SpeechResult` and `Confidence` as Twilio posts them, and measures this process's CPU
per post; then, in the same run, `core.utterance.interpret()` alone on the same utterances.
Prints both and their ratio: the share of the webhook's cost that understanding the
words takes. The utterances mix English, Spanish and Polish, short and long.

    python -m bench.speech_interpretation --calls 500
"""

from __future__ import annotations

import argparse
import itertools
import time
import xml.etree.ElementTree as ET

from redis import Redis
from sqlalchemy import update

from aftercall.web import create_app
from bench import constant_twiml
from bench.call_webhooks import Caller, fresh_calls
from bench.fresh_database import reset
from bench.webhook_load import (
    ACCOUNT_SID,
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    FROM_NUMBER,
    PUBLIC_BASE_URL,
    production_env,
)
from core import utterance as speech
from core.config import Settings
from core.db import Database
from core.models import SurveyRequest
from core.survey import QuestionKind

# (what the customer said, the call's language): every one an NPS answer.
UTTERANCES = (
    ("nine", "en"), ("Nine out of ten.", "en"), ("I'd say a solid eight, maybe", "en"),
    ("10", "en"), ("un nueve", "es"), ("diez de diez, muy bien", "es"),
    ("dziewięć", "pl"), ("no to chyba osiem na dziesięć", "pl"),
)  # fmt: skip


def speak_their_languages(url: str, calls: list) -> None:
    """Each seeded call in the language of the utterance its customer will say."""
    db = Database(url)
    with db.session() as session:
        for language in {language for _, language in UTTERANCES}:
            ids = [
                call.request_id
                for index, call in enumerate(calls)
                if UTTERANCES[index % len(UTTERANCES)][1] == language
            ]
            session.execute(
                update(SurveyRequest).where(SurveyRequest.id.in_(ids)).values(language=language)
            )
    db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("measured against PostgreSQL, as deployed")

    reset(args.database_url)
    Redis.from_url(args.redis_url).flushdb()
    warmup = 20
    calls = fresh_calls(args.database_url, warmup + args.calls)
    speak_their_languages(args.database_url, calls)
    app = create_app(Settings.from_env(production_env(args.database_url, args.redis_url)))
    utterances = itertools.cycle(UTTERANCES)  # call i says UTTERANCES[i % len]
    caller = Caller(app, constant_twiml.create_app())
    for index, seeded in enumerate(calls):
        if index == warmup:
            caller = Caller(app, constant_twiml.create_app())
        said, _language = next(utterances)
        base = f"{PUBLIC_BASE_URL}/voice/attempts/{seeded.attempt_id}"
        params = {
            "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": seeded.call_sid,
            "From": FROM_NUMBER, "To": seeded.phone, "Direction": "outbound-api",
            "CallStatus": "in-progress",
        }  # fmt: skip
        start = caller.post("start", f"{base}/start", params)
        action = ET.fromstring(start).find("Gather").get("action")
        reply = caller.post(
            "spoken answer", action, {**params, "SpeechResult": said, "Confidence": "0.92"}
        )
        if b"/questions/csat" not in reply:
            raise SystemExit(f"{said!r} was not taken: {reply[:300]!r}")

    n = args.calls
    webhook = caller.cpu["spoken answer"] / n
    bare = caller.bare_cpu["spoken answer"] / n
    rounds = max(1, 20_000 // len(UTTERANCES))
    started = time.process_time()
    for _ in range(rounds):
        for said, language in UTTERANCES:
            speech.interpret(QuestionKind.NPS, language, said, "0.92")
    interpret = (time.process_time() - started) / (rounds * len(UTTERANCES))
    print(f"{n} spoken NPS answers through the answer webhook (CPU of this process)")
    print(f"answer webhook, spoken:     {webhook * 1000:8.3f} ms per post (bare {bare * 1000:.3f})")
    print(f"core.utterance.interpret alone: {interpret * 1000:8.3f} ms per utterance")
    print(f"interpretation / webhook:   {interpret / webhook:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
