"""RECEIVERS_FILE: one TOML file with a section per platform, read when the app starts.

    [twilio-flex]
    phone = ["TaskAttributes.customers.phone", "TaskAttributes.from"]

    [amazon-connect]
    source_call_id = "detail.initialContactId"
    [amazon-connect.agents]
    "7c9e6679-7425-40de-944b-e07fc1f90ae7" = "alice"

Every key is optional; a section that is absent, or no file at all, means the platform's
documented defaults (each platform's module). Anything the file says that a receiver
cannot do (an unknown section or key, a wrong type, an unsupported event type) is a
`MappingError` naming it, so a typo stops the web process at start instead of losing
surveys silently.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from core.models import SurveyMode
from dialer.receivers.amazon_connect import ConnectReceiver
from dialer.receivers.genesys_cloud import GenesysReceiver
from dialer.receivers.mapping import MappingError
from dialer.receivers.outcome import Platform
from dialer.receivers.twilio_flex import FlexReceiver

SECTIONS = ("twilio-flex", "amazon-connect", "genesys-cloud")


@dataclass(frozen=True)
class Receivers:
    twilio_flex: FlexReceiver = field(default_factory=FlexReceiver)
    amazon_connect: ConnectReceiver = field(default_factory=ConnectReceiver)
    genesys_cloud: GenesysReceiver = field(default_factory=GenesysReceiver)

    def mode_of(self, platform: Platform) -> SurveyMode:
        """How the platform's calls are surveyed (its section's `mode`)."""
        receiver = {
            Platform.TWILIO_FLEX: self.twilio_flex,
            Platform.AMAZON_CONNECT: self.amazon_connect,
            Platform.GENESYS_CLOUD: self.genesys_cloud,
        }[platform]
        return receiver.fields.mode


def load(path: Path | None) -> Receivers:
    """The receivers as RECEIVERS_FILE configures them (defaults without a file)."""
    if path is None:
        return Receivers()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"RECEIVERS_FILE {str(path)!r} cannot be read ({exc})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"RECEIVERS_FILE {str(path)!r} is not valid TOML ({exc})") from None
    return parse(document, path.name)


def parse(document: dict, name: str = "RECEIVERS_FILE") -> Receivers:
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise MappingError(
            f"{name}: unknown section(s) {', '.join(unknown)} (known: {', '.join(SECTIONS)})"
        )
    for section in SECTIONS:
        if section in document and not isinstance(document[section], dict):
            raise MappingError(f"{name}: [{section}] must be a table")
    defaults = Receivers()
    return Receivers(
        twilio_flex=FlexReceiver.from_toml(document["twilio-flex"], f"{name} [twilio-flex]")
        if "twilio-flex" in document
        else defaults.twilio_flex,
        amazon_connect=ConnectReceiver.from_toml(
            document["amazon-connect"], f"{name} [amazon-connect]"
        )
        if "amazon-connect" in document
        else defaults.amazon_connect,
        genesys_cloud=GenesysReceiver.from_toml(
            document["genesys-cloud"], f"{name} [genesys-cloud]"
        )
        if "genesys-cloud" in document
        else defaults.genesys_cloud,
    )
