"""The dialer's tests take Twilio's status callbacks through the signed voice webhooks, as
Twilio posts them: the same signed call as the survey webhooks' tests."""

from tests.ivr.conftest import call  # noqa: F401
