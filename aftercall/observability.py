"""What operators see of a running aftercall: JSON log lines and Prometheus metrics.

Logs: every line of aftercall's own loggers (aftercall, dialer, ivr, scoring) as one JSON
object with the request id (X-Request-Id, or a new one, echoed in the response), the
call's CallSid on webhooks, and the rq job id in workers. Phone numbers that slip into a
message are masked on the way out, whatever code wrote them.

Metrics at GET /metrics (Prometheus text format): webhook and API latency per endpoint,
measured in each web process (set PROMETHEUS_MULTIPROC_DIR to an empty directory shared
by a host's gunicorn workers so that a scrape sees all of them), and, computed when
scraped, the rq queues' depths and the survey totals (requests, calls placed,
outcomes, suppressions by reason, answers by kind) from the same report code as
everything else, so on PostgreSQL a scrape reads the daily rollup, not millions of rows.
With METRICS_TOKEN set, a scrape must send it as a bearer token.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from rq import Queue, Worker, get_current_job

from core.masking import mask_numbers
from core.runtime import Runtime
from dialer.receivers.outcome import EVENTS as receiver_events
from dialer.scheduling import CALL_QUEUE
from ivr.inbound import TRANSFERS as in_call_transfers
from scoring.alerts import ALERT_QUEUE
from scoring.report import ReportQuery, report, totals
from sms.conversation import INBOUND_TEXTS as inbound_texts
from sms.outbox import MESSAGE_QUEUE

log = logging.getLogger(__name__)
OUR_LOGGERS = ("aftercall", "dialer", "ivr", "scoring", "sms")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# -- logs ---------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers (Loki, CloudWatch, ...) index."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_numbers(record.getMessage()),
        }
        line.update(_context())
        if record.exc_info:
            line["error"] = mask_numbers(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


JsonFormatter.converter = time.gmtime


def _context() -> dict[str, str]:
    context = {}
    if has_request_context():
        context["request_id"] = getattr(g, "request_id", "")
        # Only a form the view already parsed: a log line must never read (or fail to
        # read, 413) a request body itself.
        parsed = request.__dict__.get("form")
        call_sid = parsed.get("CallSid") if parsed is not None else None
        if call_sid:
            context["call_sid"] = call_sid[:64]
    else:
        job = get_current_job()
        if job is not None:
            context["job_id"] = job.id
    return context


def configure_logging(json_lines: bool, level: int = logging.INFO) -> None:
    """Our loggers to stderr, as JSON lines or as text (development); once per process."""
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        if any(getattr(h, "_aftercall", False) for h in logger.handlers):
            continue
        handler._aftercall = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(level)


# -- metrics ------------------------------------------------------------------------

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)


def install(app: Flask, runtime: Runtime) -> None:
    """Request ids and latency on every request, and GET /metrics."""
    latency = Histogram(
        "aftercall_http_request_duration_seconds",
        "Time to answer an HTTP request (webhooks, API, dashboard), by route.",
        ["endpoint", "method", "status"],
        buckets=LATENCY_BUCKETS,
        registry=None,  # registered below, per app: tests build many apps
    )

    registry = CollectorRegistry()
    registry.register(latency)
    registry.register(receiver_events)
    registry.register(in_call_transfers)
    registry.register(inbound_texts)
    registry.register(_Totals(runtime))

    @app.before_request
    def start() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers["X-Request-Id"] = getattr(g, "request_id", "")
        if hasattr(g, "started") and request.endpoint != "metrics":
            latency.labels(
                request.url_rule.rule if request.url_rule else "unmatched",
                request.method,
                str(response.status_code),
            ).observe(time.perf_counter() - g.started)
        return response

    @app.get("/metrics", endpoint="metrics")
    def metrics() -> Response:
        token = runtime.settings.metrics_token
        if token:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return Response("unauthorized\n", 401, {"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(_scraped(registry)), mimetype=CONTENT_TYPE_LATEST)


def _scraped(registry: CollectorRegistry) -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return registry

    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)
    for collector in (c for c in registry._collector_to_names if isinstance(c, _Totals)):
        combined.register(collector)
    return combined


class _Totals(Collector):
    """Survey totals and queue depths, read when Prometheus scrapes."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Any]:
        # A scrape during an outage says so (the *_up gauges) instead of failing.
        for name, part in (("database", self._survey_totals), ("redis", self._queues)):
            up = GaugeMetricFamily(f"aftercall_{name}_up", f"Whether the {name} answered.")
            try:
                families = list(part())
            except Exception:  # any failure of a dependency is "down"
                log.warning("metrics: the %s did not answer", name, exc_info=True)
                families = []
            up.add_metric([], 1 if families else 0)
            yield up
            yield from families

    def _survey_totals(self) -> Iterator[Any]:

        zone = ZoneInfo(self.runtime.settings.report_time_zone)
        with self.runtime.db.session() as session:
            row = totals(report(session, ReportQuery(time_zone=zone)))
        simple = {
            "aftercall_survey_requests": ("Survey requests received.", row.received),
            "aftercall_calls_placed": ("Calls Twilio accepted.", row.calls_placed),
        }
        for name, (help_text, value) in simple.items():
            metric = CounterMetricFamily(name, help_text)
            metric.add_metric([], value)
            yield metric
        outcomes = CounterMetricFamily(
            "aftercall_survey_outcomes", "Requests by how their calls ended.", labels=["outcome"]
        )
        for outcome in ("answered", "reached", "completed", "partial", "opted_out"):
            outcomes.add_metric([outcome], getattr(row, outcome))
        yield outcomes
        suppressed = CounterMetricFamily(
            "aftercall_suppressed",
            "Requests not called, by the rule that said no.",
            labels=["reason"],
        )
        for reason, count in sorted(row.suppressed.items()):
            suppressed.add_metric([reason], count)
        yield suppressed
        answers = CounterMetricFamily("aftercall_answers", "Score answers stored.", labels=["kind"])
        for kind, n in (("nps", row.nps_responses), ("csat", row.csat_responses),
                        ("ces", row.ces_responses)):  # fmt: skip
            answers.add_metric([kind], n)
        yield answers

    def _queues(self) -> Iterator[Any]:

        depth = GaugeMetricFamily(
            "aftercall_queue_jobs", "rq jobs by queue and state.", labels=["queue", "state"]
        )
        connection = self.runtime.redis
        for name in (CALL_QUEUE, MESSAGE_QUEUE, ALERT_QUEUE):
            queue = Queue(name, connection=connection)
            depth.add_metric([name, "queued"], queue.count)
            depth.add_metric([name, "scheduled"], queue.scheduled_job_registry.count)
            depth.add_metric([name, "started"], queue.started_job_registry.count)
            depth.add_metric([name, "failed"], queue.failed_job_registry.count)
        yield depth
        workers = GaugeMetricFamily("aftercall_rq_workers", "rq workers alive.")
        workers.add_metric([], Worker.count(connection=connection))
        yield workers
