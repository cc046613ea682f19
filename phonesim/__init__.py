"""phonesim: a Twilio-compatible phone network simulator, for tests and the demo.

It plays Twilio's part well enough that the real `twilio.rest.Client` (pointed at
`PhoneNetwork.api_base`) and a real TwiML webhook app cannot tell the difference, for
the subset a post-call survey robocaller uses. The product never imports it; tests and
the demo command do.

Twilio documentation followed. Checked against stored copies of the pages: Gather
(attributes, defaults, actionOnEmptyResult; speech: input, SpeechResult and Confidence,
speechTimeout, timeout, 60 s of speech at most, warning 13335), Record (defaults; an empty recording skips
the action), AMD (parameters, async flow), status callback events, 21215 (geo
permissions), 20429, 10001/20005 (an account not active may not place calls). Taken
from the twilio SDK's source and its test fixtures: the error JSON it parses, the
create/update parameter names, the Account, IncomingPhoneNumber and OutgoingCallerId
shapes and list paging fields. From memory, unverified: the exact error messages, the
HTTP status of 20005 (401), the code of a malformed PageSize or Page (400, 20001),
MachineDetectionDuration in milliseconds, Duration (minutes) on completed callbacks,
the code of an invalid VoiceMethod (400, 20001), the SIP codes of a rejected incoming
call (486 busy, 487 no-answer), bargeIn defaulting to true, the parameters of an empty
result posted by actionOnEmptyResult (empty Digits at a keys-only Gather, neither
Digits nor SpeechResult at one that listens for speech), how long "auto" waits.
- REST Call resource, twilio.com/docs/voice/api/call-resource: create/fetch/update/list,
  parameters To, From, Url, Method, Twiml, StatusCallback, StatusCallbackEvent,
  StatusCallbackMethod, Timeout, TimeLimit (default 4 hours), MachineDetection, AsyncAmd, AsyncAmdStatusCallback(+Method);
  updates with Url/Method, Twiml, Status=completed|canceled; JSON shape and RFC 2822 dates.
- The account, `phonesim.account`: Account fetch (friendly_name, status active,
  suspended or closed, type Full or Trial), IncomingPhoneNumbers (capabilities voice,
  sms, mms, fax; PhoneNumber filter with partial numbers and `*`) and OutgoingCallerIds,
  list and fetch; a number's VoiceUrl, VoiceMethod, StatusCallback and
  StatusCallbackMethod updated over the API or with `net.configure_number(...)`. Owned
  by default: `DEFAULT_NUMBERS`; more with `numbers=`, `caller_ids=` or
  `net.account.add_number(...)`.
- Incoming calls, twilio.com/docs/usage/webhooks/voice-webhooks and
  /docs/voice/twiml/reject: `net.dial_in(caller, number, ...)` (a contact center
  transferring its customer to the survey number). The number's voice URL is requested
  while the call rings (CallStatus=ringing, Direction=inbound, Caller/Called, the
  From/To/Caller/Called City, State, Zip and Country parameters, the country from the
  number's prefix, the rest empty), its TwiML answers the call (a first <Reject> leaves
  it unanswered), and the number's StatusCallback gets the `completed` event. Caller IDs
  pass as given ("anonymous", "+266696687"); `send_digits` is the DTMF the transferring
  platform sends into the first <Gather>.
- Errors, twilio.com/docs/errors and /docs/usage/twilios-response: 20003 (401, wrong
  or missing credentials), 20404 (also: right credentials, another account's path),
  20005 (creating a call on an account that is not active), 21211 (invalid To), 21215
  (geo permissions: account not authorized to call the number), 20429 (429), 21220
  (redirecting a call that is not in progress).
- Status callbacks, twilio.com/docs/voice/api/call-resource#statuscallbackevent:
  initiated, ringing, answered, completed (default: completed only), CallbackSource,
  SequenceNumber, Timestamp, CallDuration, Duration (minutes), SipResponseCode.
- Answering machine detection, twilio.com/docs/voice/answering-machine-detection:
  Enable/DetectMessageEnd, sync (Url fetched after detection with AnsweredBy) and
  AsyncAmd (Url fetched at once, AnsweredBy and MachineDetectionDuration in ms posted to
  AsyncAmdStatusCallback).
- TwiML voice, twilio.com/docs/voice/twiml: <Say>, <Play>, <Pause>, <Gather> (dtmf,
  numDigits, finishOnKey, timeout, action, method, actionOnEmptyResult, nested prompts
  with barge-in; speech: input "speech" / "dtmf speech", SpeechResult and Confidence,
  speechTimeout, bargeIn, with language, hints, speechModel and enhanced journaled as
  `Listening`; a persona speaks with `Speech`), <Record> (action, method, timeout, finishOnKey, maxLength, playBeep,
  transcribe, transcribeCallback; an empty recording skips the action), <Redirect>,
  <Hangup>, <Reject>. Details in `phonesim.twiml`.
- Text messages, twilio.com/docs/messaging/api/message-resource (`phonesim.message`):
  create (To, From or MessagingServiceSid, Body, StatusCallback), fetch, list; status
  queued (accepted with a service), sent, then delivered, or undelivered/failed with the
  ErrorCode `net.set_message_fate(number, "undelivered", 30003)` sets (30006 landline);
  signed status callbacks (MessageSid, MessageStatus, SmsSid, SmsStatus, ErrorCode ...)
  for every status after the first. Refused at once: 21211 (invalid To), 21606 (From
  not an SMS number of the account), 21610 (recipient texted STOP), 21408 (blocked
  region). `net.text_in(customer, number, body)` posts to the number's SmsUrl
  (`configure_number(..., sms_url=...)` or SmsUrl/SmsMethod over the API); STOP and
  the other opt-out words block the pair until START, with Twilio's reply, journaled
  as `OptOutChange`; every status as `TextMessage`. Customers text back through
  `net.set_texter(customer, TextPersona...)` (`phonesim.texter`): a question delivered
  to them (`phonesim.question` reads its "Reply with a number from 0 to 10.") is
  answered on its scale, late, never, with nonsense first, with STOP or HELP, through
  `text_in` after a simulated delay; `text_persona_mix=TextPersonaMix.default()` gives
  every other customer one. Confirmed in Twilio's pages: the
  status values, no callback for the initial status, "accepted" with a service,
  num_segments 0 until a sender is assigned, 21606, 21610, 30003, 30006, the opt-out
  words. From memory: the messages of 21602, 21603, 21604, 21617, 21609, 21408, 21705,
  the START/HELP words and reply texts, OptOutType on the webhook, the timings.
- Webhook security, twilio.com/docs/usage/security: X-Twilio-Signature over the exact
  URL (and POST parameters), computed with the SDK's RequestValidator.

Left out for messages: MMS (MediaUrl), scheduling, Messaging Service APIs (any
well-formed MG SID is accepted and sends from the account's first SMS number), the
"sending" status, TwiML <Message> replies to an inbound webhook, SMS fallback URLs,
and prices. Left out: <Dial>/<Conference>/<Enqueue>/<Stream>/<Connect>/<Sms>
(recorded as unsupported-verb application errors), real speech recognition (a persona's
`Speech` says what the recogniser returns; partialResultCallback and profanityFilter
do nothing), real audio (a <Play> lasts 5 s; recordings are silent WAVs),
StatusCallback on TwiML verbs, recordingStatusCallback, fallback URLs, AMD tuning
parameters, pricing, the Recordings/Transcriptions list APIs, buying, releasing or
verifying numbers over the API, the number fields other than the voice and SMS URLs and status
callback (fallback URLs, applications, caller name lookup; inbound calls carry no
CallerName, ForwardedFrom or CallToken), checking that a call's From is one of
the account's numbers (Twilio's 21210; phonesim places calls from any valid number),
queueing calls above the CPS limit (Twilio queues them; phonesim answers 429 when
`calls_per_second` is exceeded, like Twilio's API concurrency limit), and API keys
(only account SID + auth token auth). Callee behaviour is scripted (`phonesim.persona`)
and time is simulated (`phonesim.clock`).

Faults for tests of what the product does when Twilio misbehaves: `inject_fault` (the
next REST requests answer 429, 5xx or a given Twilio error), `slow_down` (they answer
late), `slow_down_creates` (the call is placed but the create request answers too late
for the client), `lose_final_callbacks` (the final status callback never arrives;
fetching the call still tells how it ended).

Usage::

    net = PhoneNetwork(account_sid, auth_token, clock=SimClock(), seed=1)
    net.start()                      # REST API on 127.0.0.1:<free port>
    net.set_persona("+15551230001", Persona.answering(["10", Speech("two"), Comment("Slow", 6)]))
    client = Client(account_sid, auth_token, http_client=RedirectingHttpClient(net.api_base))
    sid = client.calls.create(to="+15551230001", from_="+15550000000", url=app_url).sid
    net.run_until_idle()
    call = net.call(sid)             # call.heard, call.keys_sent, call.said, call.status ...
    net.configure_number("+14155550100", voice_url=app_url, status_callback=status_url)
    call = net.dial_in("+15551230001", "+14155550100", send_digits="123#")
    net.run_until_idle()             # an inbound call, the same SimCall to assert on
    net.set_texter("+15551230002", TextPersona.answering("promoter"))
    client.messages.create(to="+15551230002", from_="+14155550100",
                           body="How likely are you to recommend us? Reply with a number from 0 to 10.")
    net.run_until_idle()             # "9/10" (or "ten", "9 out of 10" ...) posted to the SmsUrl
    net.stop()
"""

from phonesim.account import DEFAULT_NUMBERS, Account, CallerId, IncomingNumber
from phonesim.call import SimCall
from phonesim.clock import EagerClock, SimClock, WallClock, rfc2822
from phonesim.errors import ApiError
from phonesim.feeling import Feeling
from phonesim.journal import (
    AppError,
    CallbackPost,
    DocumentFetch,
    Journal,
    KeyPress,
    Listening,
    OptOutChange,
    Prompt,
    RestExchange,
    SpeechInput,
    TextMessage,
)
from phonesim.message import SimMessage
from phonesim.network import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, PhoneNetwork
from phonesim.persona import Comment, Persona, PersonaMix, Speech
from phonesim.question import Question, read_question
from phonesim.server import serve
from phonesim.texter import TextPersona, TextPersonaMix, TextThread
from phonesim.wsgi import BackgroundServer

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_NUMBERS",
    "Account",
    "ApiError",
    "AppError",
    "BackgroundServer",
    "CallbackPost",
    "CallerId",
    "Comment",
    "DocumentFetch",
    "EagerClock",
    "Feeling",
    "IncomingNumber",
    "Journal",
    "KeyPress",
    "Listening",
    "OptOutChange",
    "Persona",
    "PersonaMix",
    "PhoneNetwork",
    "Prompt",
    "Question",
    "RestExchange",
    "SimCall",
    "SimClock",
    "SimMessage",
    "Speech",
    "SpeechInput",
    "TextMessage",
    "TextPersona",
    "TextPersonaMix",
    "TextThread",
    "WallClock",
    "read_question",
    "rfc2822",
    "serve",
]
