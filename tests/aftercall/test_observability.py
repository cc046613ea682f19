"""Operators' view: JSON log lines with ids and no phone numbers, Prometheus metrics."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
from flask import request

from aftercall.observability import JsonFormatter
from aftercall.web import create_app
from core.config import ConfigError, Settings
from core.masking import mask_numbers
from dialer.scheduling import CALL_QUEUE
from tests.conftest import PUBLIC_BASE_URL, sign
from tests.scoring.test_report import add


def metric_lines(text: str, name: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name)
    }


def test_a_log_line_is_json_with_the_ids_and_no_phone_number(app):
    formatter = JsonFormatter()
    with app.test_request_context(
        "/healthz", method="POST", data={"CallSid": "CA123"},
        headers={"X-Request-Id": "req-42"},
    ):  # fmt: skip
        app.preprocess_request()
        unparsed = json.loads(formatter.format(logging.makeLogRecord({"msg": "early"})))
        assert "call_sid" not in unparsed  # a log line never reads the body itself
        assert request.form["CallSid"] == "CA123"  # as the webhook view does
        record = logging.LogRecord(
            "aftercall.web.voice", logging.WARNING, __file__, 1, "no survey for %s", ("+1 415 555 0123",),
            None,
        )  # fmt: skip
        line = json.loads(formatter.format(record))
    assert line["level"] == "warning" and line["logger"] == "aftercall.web.voice"
    assert (line["request_id"], line["call_sid"]) == ("req-42", "CA123")
    assert "555" not in line["message"] and line["message"].endswith("23")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +14155550123 now", "call ••••••••••23 now"),
        ("waited 45 minutes", "waited 45 minutes"),
    ],
)
def test_mask_numbers(text, expected):
    assert mask_numbers(text) == expected


def test_request_ids_are_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-Id": "abc-1"}).headers["X-Request-Id"] == (
        "abc-1"
    )
    made = client.get("/healthz", headers={"X-Request-Id": "<script>"}).headers["X-Request-Id"]
    assert made != "<script>" and len(made) == 32


def test_metrics_count_requests_latency_and_queues(runtime, redis_url, make_attempt):
    runtime = replace(runtime, settings=replace(runtime.settings, redis_url=redis_url))
    app = create_app(runtime=runtime)
    client = app.test_client()
    with runtime.db.session() as session:
        add(session, 1, answers=[("nps", "nps", 9), ("csat", "csat", 5)])
        add(session, 2, state="suppressed", attempts=0, reason="not_sampled")
    attempt = make_attempt()
    url = f"{PUBLIC_BASE_URL}/voice/attempts/{attempt.id}/start"
    params = {"CallSid": attempt.call_sid or "CA1", "CallStatus": "in-progress"}
    client.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)})
    runtime.queue(CALL_QUEUE).enqueue("dialer.jobs.reconcile")

    text = client.get("/metrics").get_data(as_text=True)

    latency = metric_lines(text, "aftercall_http_request_duration_seconds_count")
    start = '{endpoint="/voice/attempts/<int:attempt_id>/start",method="POST",status="200"}'
    assert latency[f"aftercall_http_request_duration_seconds_count{start}"] == 1.0
    assert metric_lines(text, "aftercall_survey_requests_total") == {
        "aftercall_survey_requests_total": 3.0
    }
    assert (
        metric_lines(text, "aftercall_suppressed_total")[
            'aftercall_suppressed_total{reason="not_sampled"}'
        ]
        == 1.0
    )
    assert metric_lines(text, "aftercall_answers_total")['aftercall_answers_total{kind="nps"}'] == 1
    assert (
        metric_lines(text, "aftercall_queue_jobs")[
            'aftercall_queue_jobs{queue="calls",state="queued"}'
        ]
        == 1.0
    )
    assert metric_lines(text, "aftercall_redis_up") == {"aftercall_redis_up": 1.0}
    assert metric_lines(text, "aftercall_database_up") == {"aftercall_database_up": 1.0}


def test_metrics_say_when_redis_is_down(runtime):
    unreachable = replace(runtime.settings, redis_url="redis://127.0.0.1:1/0")
    client = create_app(runtime=replace(runtime, settings=unreachable)).test_client()
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert metric_lines(text, "aftercall_redis_up") == {"aftercall_redis_up": 0.0}
    assert metric_lines(text, "aftercall_database_up") == {"aftercall_database_up": 1.0}


def test_metrics_token(runtime):
    guarded = replace(runtime.settings, metrics_token="s3cret-scrape")
    client = create_app(runtime=replace(runtime, settings=guarded)).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
    assert ok.status_code == 200


def test_log_format_setting():
    assert Settings.from_env({"LOG_FORMAT": "json"}).json_logs
    assert not Settings.from_env({}).json_logs
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"})
