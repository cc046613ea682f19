"""Amazon Connect contact records in the shape AWS documents, and Firehose's requests.

Written for aftercall after AWS's contact record data model
(docs.aws.amazon.com/connect/latest/adminguide/ctr-data-model.html): PascalCase keys,
`yyyy-mm-ddThh:mm:ssZ` times, unset members as JSON null, `Agent` null for a contact
no agent took, legs linked by InitialContactId / PreviousContactId / NextContactId as in
AWS's "Identify conferences and transfers" examples. The Firehose request follows AWS's
HTTP endpoint delivery specification
(docs.aws.amazon.com/firehose/latest/dev/httpdeliveryrequestresponse.html): base64
records in a JSON body, optionally gzip-encoded, each record compact JSON with or
without a trailing newline.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

INSTANCE = "arn:aws:connect:us-east-1:123456789012:instance/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
PATH = "/api/v1/events/amazon-connect/contact-records"


def stamp(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def contact_record(
    contact_id: str,
    *,
    ended_at: datetime,
    agent: str | None = "alice.ng",
    phone: str | None = "+14155550123",
    queue: str | None = "Billing",
    team: str | None = "North",
    initial: str | None = None,
    previous: str | None = None,
    next_: str | None = None,
    method: str = "INBOUND",
    channel: str = "VOICE",
    talked: timedelta = timedelta(minutes=4),
    acw_at: datetime | None = None,
    transfer_completed_at: datetime | None = None,
    updated_at: datetime | None = None,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One contact record (one leg). `acw_at` defaults to the leg's end."""
    connected = ended_at - talked
    agent_block = None
    if agent is not None:
        acw = acw_at or ended_at
        agent_block = {
            "ARN": f"{INSTANCE}/agent/{uuid.uuid5(uuid.NAMESPACE_URL, agent)}",
            "Username": agent,
            "ConnectedToAgentTimestamp": stamp(connected),
            "AgentInteractionDuration": int(talked.total_seconds()),
            "AfterContactWorkStartTimestamp": stamp(acw),
            "AfterContactWorkEndTimestamp": stamp(acw + timedelta(seconds=30)),
            "AfterContactWorkDuration": 30,
            "CustomerHoldDuration": 0,
            "HierarchyGroups": {
                "Level1": {"ARN": f"{INSTANCE}/agent-group/site", "GroupName": "Lisbon"},
                "Level2": {"ARN": f"{INSTANCE}/agent-group/team", "GroupName": team}
                if team
                else None,
                "Level3": None,
                "Level4": None,
                "Level5": None,
            },
            "RoutingProfile": {"ARN": f"{INSTANCE}/routing-profile/rp", "Name": "Basic"},
        }
    return {
        "AWSAccountId": "123456789012",
        "AWSContactTraceRecordFormatVersion": "2017-03-10",
        "Agent": agent_block,
        "AgentConnectionAttempts": 1 if agent else 0,
        "Attributes": attributes or {},
        "Channel": channel,
        "ConnectedToSystemTimestamp": stamp(connected - timedelta(minutes=1)),
        "ContactId": contact_id,
        "CustomerEndpoint": {"Address": phone, "Type": "TELEPHONE_NUMBER"} if phone else None,
        "DisconnectReason": "CUSTOMER_DISCONNECT",
        "DisconnectTimestamp": stamp(ended_at),
        "InitialContactId": initial,
        "InitiationMethod": method,
        "InitiationTimestamp": stamp(connected - timedelta(minutes=1)),
        "InstanceARN": INSTANCE,
        "LastUpdateTimestamp": stamp(updated_at or ended_at + timedelta(minutes=1)),
        "MediaStreams": [{"Type": "AUDIO"}],
        "NextContactId": next_,
        "PreviousContactId": previous,
        "Queue": {
            "ARN": f"{INSTANCE}/queue/q-billing",
            "Name": queue,
            "EnqueueTimestamp": stamp(connected - timedelta(seconds=40)),
            "DequeueTimestamp": stamp(connected),
            "Duration": 40,
        }
        if queue
        else None,
        "Recording": None,
        "Recordings": None,
        "SystemEndpoint": {"Address": "+18005550100", "Type": "TELEPHONE_NUMBER"},
        "TransferCompletedTimestamp": stamp(transfer_completed_at),
        "TransferredToEndpoint": None,
    }


def firehose_body(
    records: list[dict[str, Any]], *, newline: bool = True, request_id: str | None = None
) -> dict[str, Any]:
    data = [
        base64.b64encode(
            (json.dumps(record, separators=(",", ":")) + ("\n" if newline else "")).encode()
        ).decode()
        for record in records
    ]
    return {
        "requestId": request_id or str(uuid.uuid4()),
        "timestamp": 1764900000000,
        "records": [{"data": item} for item in data],
    }


def firehose_post(client, body: dict[str, Any], access_key: str, *, compress: bool = False):
    """Post as Firehose does: its headers, the access key, JSON (gzip if configured)."""
    payload = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": body.get("requestId", ""),
        "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/ctr",
        "X-Amz-Firehose-Access-Key": access_key,
    }
    if compress:
        payload = gzip.compress(payload)
        headers["Content-Encoding"] = "gzip"
    return client.post(PATH, data=payload, headers=headers)
