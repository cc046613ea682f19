"""What a running process holds: settings, the database, the survey catalog, Twilio.

Built once per process (web app factory, worker start, CLI command) from `Settings` and
handed to the code that needs it, rather than living in module globals, so tests and the
demo can run several differently configured instances side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from twilio.rest import Client

from aftercall.config import Settings
from aftercall.db import Database
from aftercall.survey import SurveyCatalog
from aftercall.telephony import rest_client


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: SurveyCatalog
    _twilio: Client | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            catalog=SurveyCatalog.from_directory(settings.surveys_dir),
        )

    @cached_property
    def twilio(self) -> Client:
        return self._twilio or rest_client(self.settings)
