"""The SMS channel: a survey by text, one question per message (issue 17).

A domain beside dialer/, ivr/ and scoring/, importing none of them: the dialer decides
whether and when a request is texted (its rules, hours and pacing) and hands it over
through core.events; from the first text on, the conversation is this package's:
`conversation` (the service: open, receive a reply, record a delivery status, expire),
`replies` (what a reply means), `wording` (what a text says), `sender` (Twilio's
Messages API, paced) and `jobs` (the rq jobs). The survey flow itself is the core's
(core.flow), shared with the voice survey.
"""
