"""Where a platform's event keeps each intake field, and turning it into a `CallEnded`.

Each receiver (twilio_flex, amazon_connect, genesys_cloud) describes its platform's event
as a `FieldMap`: for every intake field, a list of dotted paths into the event
("detail.agentInfo.agentArn"), the first present one winning. The defaults are in each
platform's module; a deployment whose payloads differ (another TaskAttributes key for the
customer's number, agent names instead of ARNs) overrides them in the TOML file that
RECEIVERS_FILE names, read by dialer.receivers.mapping_file with `field_map_from_toml`.

What this module does not do: decide whether the call may be surveyed (dialer.intake
does, as for every other source) or which of a platform's events mean "the call ended"
(each platform's module does). An event that cannot be mapped is an `InvalidEvent`; one
the receiver is not meant to survey is `EventIgnored`, with a reason that is counted.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.config import ConfigError
from core.models import SurveyMode
from dialer.intake import (
    EARLIEST_ENDED_AT,
    LATEST_ENDED_AT,
    CallEnded,
    IntakeRejected,
    check_text,
    parse_ended_at,
)

Paths = tuple[str, ...]


class IgnoreReason(StrEnum):
    """Why an authentic, well-formed event is acknowledged without a survey request."""

    OTHER_EVENT = "other_event_type"  # not from the stream this receiver reads
    NOT_SELECTED = "event_not_selected"  # an event type the deployment does not survey on
    NOT_VOICE = "not_voice"  # chat, email, task, ...
    NO_AGENT = "no_agent"  # abandoned in the queue or the IVR: no agent to rate
    INITIATION_SKIPPED = "initiation_method_skipped"  # e.g. a supervisor monitoring a call


class EventIgnored(Exception):
    def __init__(self, reason: IgnoreReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class InvalidEvent(Exception):
    """The event cannot become a survey request as sent, and sending it again will not help.

    `invalid_event` (400): not the platform's event shape at all; `unmapped_field` (422): a
    field aftercall needs is missing where the mapping looks, or has a type it cannot use
    (the mapping, or the platform's configuration, needs fixing); `invalid_field` (422): a
    value that intake could never store (a NUL character, a time before 2000).
    """

    def __init__(self, code: str, detail: str, status: int = 422) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status


class MappingError(ConfigError):
    """RECEIVERS_FILE is unreadable or says something this module cannot do; names where."""


@dataclass(frozen=True)
class FieldMap:
    """For each intake field, the paths into a platform's event that may hold it."""

    source_call_id: Paths
    phone: Paths
    ended_at: Paths
    # When `direction` reads "outbound" (any case), the customer is the called party:
    # `outbound_phone` is tried instead of `phone`.
    outbound_phone: Paths = ()
    direction: Paths = ()
    agent: Paths = ()
    queue: Paths = ()
    team: Paths = ()
    language: Paths = ()
    # A survey name for every call from this platform; None: DEFAULT_SURVEY.
    survey: str | None = None
    # How this platform's calls are surveyed: called back, or in the call (the platform
    # transfers the customer to the survey number; never called back: dialer.in_call).
    mode: SurveyMode = SurveyMode.CALLBACK
    # metadata key -> path; found values only.
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Platform ids (or ARNs, or their last part) -> the names reports should show.
    agents: Mapping[str, str] = field(default_factory=dict)
    queues: Mapping[str, str] = field(default_factory=dict)


FIELD_KEYS = frozenset(f.name for f in fields(FieldMap))
_PATH_KEYS = (
    "source_call_id", "phone", "ended_at", "outbound_phone", "direction", "agent", "queue",
    "team", "language",
)  # fmt: skip
_TABLE_KEYS = ("metadata", "agents", "queues")


# -- reading events -------------------------------------------------------------------


def find(event: Any, path: str) -> Any:
    """The value at a dotted path, or None when any step is missing or the value is empty.

    Keys match exactly first, then ignoring case: Amazon Connect's own sample events
    spell `AgentInfo.AgentArn` where its data model says `agentInfo.agentArn`. A
    numeric step indexes a list ("resources.0").
    """
    value = event
    for step in path.split("."):
        if isinstance(value, Mapping):
            if step in value:
                value = value[step]
                continue
            folded = step.casefold()
            matches = [key for key in value if isinstance(key, str) and key.casefold() == folded]
            if not matches:
                return None
            value = value[matches[0]]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    if value is None or value == "" or value == {} or value == []:
        return None
    return value


def first(event: Any, paths: Paths) -> tuple[str, Any] | None:
    """The first of `paths` with a value, and that value."""
    for path in paths:
        value = find(event, path)
        if value is not None:
            return path, value
    return None


def to_call(event: Any, fields_: FieldMap) -> CallEnded:
    """The `CallEnded` the mapping finds in `event`; InvalidEvent naming the field if not."""
    source_path, source_call_id = _required(event, fields_.source_call_id, "source_call_id")
    phone_paths = fields_.phone
    direction = first(event, fields_.direction)
    if fields_.outbound_phone and direction and str(direction[1]).casefold() == "outbound":
        phone_paths = fields_.outbound_phone
    phone_path, phone = _required(event, phone_paths, "the customer's phone number")
    ended_path, ended_value = _required(event, fields_.ended_at, "ended_at")
    language = _optional_text(event, fields_.language, "language")
    return CallEnded(
        phone=_text(address_number(_scalar_text(phone, phone_path)), phone_path),
        source_call_id=_text(_scalar_text(source_call_id, source_path), source_path),
        ended_at=moment(ended_value, ended_path),
        agent=display_name(event, fields_.agent, fields_.agents),
        queue=display_name(event, fields_.queue, fields_.queues),
        team=_optional_text(event, fields_.team, "team"),
        language=language or "en",
        survey=fields_.survey,
        metadata=metadata_of(event, fields_.metadata),
    )


def address_number(address: str) -> str:
    """The number in a telephone address: 'tel:+14155550123' and
    'sip:+14155550123@carrier.example;user=phone' are both '+14155550123' (Genesys Cloud
    writes ANI and DNIS as URIs); anything else is returned as it is, for intake to judge."""
    text = address.strip()
    scheme, colon, rest = text.partition(":")
    if not colon or scheme.lower() not in ("tel", "sip", "sips"):
        return text
    if scheme.lower() != "tel":
        rest = rest.split("@", 1)[0]
    return rest.split(";", 1)[0].strip()


def arn_resource_id(text: str) -> str:
    """The last part of an ARN's resource ('arn:aws:connect:...:instance/i-1/agent/a-9'
    -> 'a-9'); any other text unchanged."""
    if text.startswith("arn:"):
        return text.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return text


_NUMBER = re.compile(r"^\s*\d+(\.\d+)?\s*$")
# Unix times above this are milliseconds: 1e11 seconds is the year 5138.
_MILLISECONDS_FROM = 1e11


def moment(value: Any, path: str) -> datetime:
    """A time as platforms write it: ISO 8601 with an offset, or Unix seconds or
    milliseconds (as a number or a string of digits), in UTC."""
    if isinstance(value, str) and not _NUMBER.match(value):
        try:
            return parse_ended_at(value)
        except IntakeRejected as exc:
            raise InvalidEvent("invalid_field", f"{path}: {exc.detail}") from None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidEvent("unmapped_field", f"{path} is not a time")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidEvent("invalid_field", f"{path} is not a time")
    seconds = number / 1000 if number >= _MILLISECONDS_FROM else number
    try:
        ended = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        ended = None
    if ended is None or not EARLIEST_ENDED_AT <= ended < LATEST_ENDED_AT:
        raise InvalidEvent("invalid_field", f"{path} ({value!r}) is not between 2000 and 2100")
    return ended


def _required(event: Any, paths: Paths, what: str) -> tuple[str, Any]:
    found = first(event, paths)
    if found is None:
        where = " or ".join(paths) if paths else "no path (the mapping has none)"
        raise InvalidEvent("unmapped_field", f"no {what} in the event at {where}")
    return found


def _scalar_text(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidEvent("unmapped_field", f"{path} is a {type(value).__name__}, not text")


def _text(value: str, path: str) -> str:
    try:
        return check_text(value, path)
    except IntakeRejected as exc:
        raise InvalidEvent("invalid_field", exc.detail) from None


def _optional_text(event: Any, paths: Paths, what: str) -> str | None:
    found = first(event, paths)
    if found is None:
        return None
    path, value = found
    return _text(_scalar_text(value, path), path)


def display_name(event: Any, paths: Paths, names: Mapping[str, str]) -> str | None:
    """The name reports show: the deployment's name for the id (or the ARN, or its last
    part) if it has one, else the id itself (an ARN's last part)."""
    found = first(event, paths)
    if found is None:
        return None
    path, value = found
    text = _text(_scalar_text(value, path), path)
    if text in names:
        return names[text]
    resource_id = arn_resource_id(text)
    return names.get(resource_id, resource_id)


def metadata_of(event: Any, paths: Mapping[str, str]) -> dict[str, Any]:
    """Found values only; objects and lists as compact JSON text (intake stores scalars)."""
    metadata: dict[str, Any] = {}
    for key, path in paths.items():
        value = find(event, path)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        metadata[key] = _text(value, f"metadata {key!r}") if isinstance(value, str) else value
    return metadata


def eventbridge_detail(event: Any) -> dict[str, Any]:
    """The `detail` of an EventBridge event (as an API destination posts it, unchanged)."""
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        raise InvalidEvent(
            "invalid_event",
            "not an EventBridge event: no 'detail' object (send the event unchanged)",
            400,
        )
    return event["detail"]


# -- reading RECEIVERS_FILE -------------------------------------------------------------


def field_map_from_toml(defaults: FieldMap, section: Mapping[str, Any], where: str) -> FieldMap:
    """`defaults` with the field keys of a TOML section replaced (whole lists and tables,
    not merged: a deployment's `phone = [...]` is the complete list of places to look)."""
    changes: dict[str, Any] = {}
    for key, value in section.items():
        if key in _PATH_KEYS:
            changes[key] = paths_setting(value, f"{where}.{key}")
        elif key in _TABLE_KEYS:
            changes[key] = text_table(value, f"{where}.{key}")
        elif key == "survey":
            if not isinstance(value, str) or not value.strip():
                raise MappingError(f"{where}.survey must be a survey name")
            changes[key] = value.strip()
        elif key == "mode":
            modes = [mode.value for mode in SurveyMode]
            if value not in modes:
                raise MappingError(f"{where}.mode must be one of {', '.join(modes)}")
            changes[key] = SurveyMode(value)
    return replace(defaults, **changes)


def paths_setting(value: Any, where: str) -> Paths:
    """A path or a list of paths ("detail.contactId" or ["TaskAttributes.from", ...])."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise MappingError(f"{where} must be a path or a list of paths")
    for item in items:
        if not item or any(not step for step in item.split(".")):
            raise MappingError(f"{where}: {item!r} is not a dotted path")
    return tuple(items)


def text_table(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(entry, str) for key, entry in value.items()
    ):
        raise MappingError(f"{where} must be a table of text values")
    return dict(value)


def names_setting(value: Any, where: str, allowed: frozenset[str] | None = None) -> frozenset[str]:
    """A list of names (event types, channels); with `allowed`, only those."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MappingError(f"{where} must be a list of names")
    if allowed is not None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise MappingError(
                f"{where}: {', '.join(unknown)} not supported (one of {', '.join(sorted(allowed))})"
            )
    return frozenset(value)


def upper_names_setting(
    section: Mapping[str, Any],
    key: str,
    default: frozenset[str],
    where: str,
    allowed: frozenset[str] | None = None,
) -> frozenset[str]:
    """`names_setting` for names platforms write in capitals (VOICE, DISCONNECTED), in any
    case in the file; `default` when the section does not set `key`."""
    if key not in section:
        return default
    value = section[key]
    if isinstance(value, list):
        value = [item.upper() if isinstance(item, str) else item for item in value]
    return names_setting(value, f"{where}.{key}", allowed)


def flag_setting(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise MappingError(f"{where} must be true or false")
    return value


def check_keys(section: Mapping[str, Any], own: frozenset[str], where: str) -> None:
    unknown = sorted(set(section) - own - FIELD_KEYS)
    if unknown:
        raise MappingError(
            f"{where}: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(own | FIELD_KEYS))})"
        )
