"""The core: what every part of aftercall stands on (settings, database, models, surveys,
API keys, masking, the Twilio signature and client). It imports no web framework, no job
queue and no domain package (dialer, ivr, scoring): docs/architecture.md.
"""
