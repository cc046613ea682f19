"""Amazon Connect contact records, delivered by Amazon Data Firehose's HTTP endpoint.

    POST /api/v1/events/amazon-connect/contact-records

Speaks Firehose's HTTP endpoint delivery as AWS specifies it
(docs.aws.amazon.com/firehose/latest/dev/httpdeliveryrequestresponse.html):

- The request carries `X-Amz-Firehose-Request-Id` and `X-Amz-Firehose-Access-Key`.
  The access key is an aftercall API key with the `intake` scope, configured as the
  stream's access key. The body is JSON, `{"requestId", "timestamp", "records": [{"data":
  base64}]}`, gzip-compressed when `Content-Encoding: gzip` says so.
- The response is JSON, uncompressed, echoing `requestId` with this server's
  `timestamp` in milliseconds (and `errorMessage` when it failed). Firehose counts only
  200 as delivered and sends the whole batch again after any other status. So a record
  that can never become a survey (a chat, an abandoned call, a malformed record) is
  counted and logged, and the batch is still answered 200. Only what fails the whole
  request gets another status: a wrong key (401/403), a body that is not Firehose's
  (400), a body over the limit (413, which Firehose does not retry), and a database it
  cannot write to (503: Firehose retries, and every record is safe to take twice).

The view parses and renders. Each record's fate is dialer.receivers.contact_records'.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import zlib
from collections import Counter
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from aftercall.web.context import current_runtime
from aftercall.web.intake_api import RECEIVERS
from core import apikeys
from dialer.receivers.contact_records import receive_record
from dialer.receivers.outcome import Platform

log = logging.getLogger(__name__)

bp = Blueprint("firehose", __name__, url_prefix="/api/v1/events/amazon-connect")

# AWS's limit for one request's body before compression; a stream's buffer is at most this.
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_RECORDS = 10_000
MAX_REQUEST_ID = 200


class FirehoseError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@bp.before_request
def _authenticate() -> None:
    request.max_content_length = MAX_BODY_BYTES
    presented = request.headers.get("X-Amz-Firehose-Access-Key", "").strip()
    if not presented:
        raise FirehoseError(401, "no X-Amz-Firehose-Access-Key: set the stream's access key")
    with current_runtime().db.session() as session:
        key = apikeys.verify_key(session, presented)
        scopes = apikeys.key_scopes(key) if key else frozenset()
        g.api_key_id = key.id if key else None
        name = key.name if key else None
    if name is None:
        raise FirehoseError(401, "the access key is not an aftercall API key, or was revoked")
    if apikeys.INTAKE not in scopes:
        raise FirehoseError(403, f"the API key {name!r} lacks the intake scope")


@bp.post("/contact-records")
def receive_contact_records() -> Response:
    request_id = _request_id()
    records = _records()
    runtime = current_runtime()
    mode = current_app.extensions[RECEIVERS].mode_of(Platform.AMAZON_CONNECT)
    tally: Counter[str] = Counter()
    try:
        for data in records:
            for outcome in receive_record(runtime, data, g.api_key_id, mode):
                tally[outcome.summary()] += 1
    except SQLAlchemyError:
        log.exception("Firehose request %s: the database failed; Firehose will retry", request_id)
        raise FirehoseError(503, "the records could not be stored now") from None
    log.info(
        "Firehose request %s: %d records: %s",
        request_id,
        len(records),
        ", ".join(f"{n} {what}" for what, n in sorted(tally.items())) or "none",
    )
    return _answer(200, request_id)


@bp.errorhandler(FirehoseError)
def _refused(error: FirehoseError) -> Response:
    log.warning("Firehose request %s refused (%s): %s", _request_id(), error.status, error.message)
    return _answer(error.status, _request_id(), error.message)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    return _answer(status, _request_id(), error.description or error.name)


def _records() -> list[bytes]:
    body = request.get_data(cache=False)  # over MAX_BODY_BYTES: 413
    if request.headers.get("Content-Encoding", "").strip().lower() == "gzip":
        body = _gunzip(body)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise FirehoseError(400, "the body is not JSON") from None
    records = document.get("records") if isinstance(document, dict) else None
    if not isinstance(records, list) or len(records) > MAX_RECORDS:
        raise FirehoseError(400, f"the body has no list of at most {MAX_RECORDS} records")
    return [_data(record, index) for index, record in enumerate(records)]


def _data(record: Any, index: int) -> bytes:
    """A record's decoded data; a record Firehose could not have sent is an empty one,
    which the receiver counts as invalid (the rest of the batch still counts)."""
    data = record.get("data") if isinstance(record, dict) else None
    if not isinstance(data, str):
        log.warning("Firehose record %d has no base64 data", index)
        return b""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        log.warning("Firehose record %d: data is not base64", index)
        return b""


def _gunzip(body: bytes) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise FirehoseError(400, "Content-Encoding is gzip but the body is not") from None
    if len(data) > MAX_BODY_BYTES or decompressor.unconsumed_tail:
        raise FirehoseError(413, f"the body is over {MAX_BODY_BYTES} bytes uncompressed")
    if not decompressor.eof:
        raise FirehoseError(400, "the gzip body is cut short")
    return data


def _request_id() -> str:
    return request.headers.get("X-Amz-Firehose-Request-Id", "")[:MAX_REQUEST_ID]


def _answer(status: int, request_id: str, error_message: str | None = None) -> Response:
    body: dict[str, Any] = {"requestId": request_id, "timestamp": int(time.time() * 1000)}
    if error_message is not None:
        body["errorMessage"] = error_message[:8192]
    return Response(json.dumps(body), status=status, mimetype="application/json")
