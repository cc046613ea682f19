"""Customers who text back (issue 17): a question texted with the real twilio SDK is
delivered to a texting persona, which answers on the question's scale, late, never,
with nonsense first, with STOP or HELP; its replies reach a live app's SMS URL as signed
inbound webhooks (checked by the `webapp` fixture). The app plays the product's part
only as far as each test needs: no aftercall code."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from core.telephony import RedirectingHttpClient
from phonesim import (
    DEFAULT_NUMBERS,
    PhoneNetwork,
    Question,
    SimClock,
    TextPersona,
    TextPersonaMix,
    read_question,
)
from phonesim.feeling import COMMENTS
from phonesim.texter import NONSENSE
from tests.phonesim.conftest import ACCOUNT_SID, AUTH_TOKEN, START
from tests.phonesim.twiml_app import TwimlApp

SURVEY_NUMBER = DEFAULT_NUMBERS[0]
CUSTOMER = "+12125550142"
INTRO = "Customer support: a short survey about your support call. Reply STOP to opt out."
NPS = "How likely are you to recommend us to a friend? Reply with a number from 0 to 10."
CSAT = (
    "How satisfied were you with the support you got? "
    "Reply with a number from 1 (very dissatisfied) to 5 (very satisfied)."
)
CES = (
    "How easy was it to get your problem solved? "
    "Reply with a number from 1 (very difficult) to 7 (very easy)."
)
RESOLVED = "Was your problem solved? Reply YES or NO."
COMMENT = "What could we do better? Reply with a few words, or SKIP."
REASK = "Sorry, we did not understand that. "
THANKS = "Thank you for your feedback!"
CLOSED = "This survey has closed. Thank you for your time."

NPS_ES = "¿Nos recomendaría a un amigo? Responda con un número del 0 al 10."
CSAT_ES = "Responda con un número del 1 (muy insatisfecho) al 5 (muy satisfecho)."
RESOLVED_ES = "¿Resolvimos su problema? Responda SÍ o NO."
COMMENT_ES = "¿Qué podemos mejorar? Responda con unas palabras, o SKIP."
NPS_PL = "Czy polecisz nas znajomym? Odpowiedz liczbą od 0 do 10."
CES_PL = "Odpowiedz liczbą od 1 (bardzo trudno) do 7 (bardzo łatwo)."
RESOLVED_PL = "Czy problem został rozwiązany? Odpowiedz TAK lub NIE."
COMMENT_PL = "Co możemy poprawić? Odpowiedz kilkoma słowami albo SKIP."

_NUMBER_WORDS = {
    word: value
    for words in (
        "zero one two three four five six seven eight nine ten",
        "cero uno dos tres cuatro cinco seis siete ocho nueve diez",
        "zero jeden dwa trzy cztery pięć sześć siedem osiem dziewięć dziesięć",
    )
    for value, word in enumerate(words.split())
}
_YES = {"en": {"yes", "y"}, "es": {"sí", "s"}, "pl": {"tak", "t"}}
_NO = {"en": {"no", "n"}, "es": {"no", "n"}, "pl": {"nie", "n"}}


def number_in(body: str) -> int:
    """The value a reply gives, as a reader of "9", "9/10", "nine", "9!" or "9 out of
    10" sees it: the leading number, in digits or as a word."""
    digits = re.match(r"\s*(\d+)", body)
    if digits:
        return int(digits[1])
    return _NUMBER_WORDS[body.strip().rstrip("!").lower()]


def yes_or_no(body: str, language: str) -> bool:
    word = body.strip().rstrip("!.").lower()
    assert word in _YES[language] | _NO[language], body
    return word in _YES[language]


@pytest.fixture
def inbox(network: PhoneNetwork, webapp: TwimlApp) -> list[dict[str, str]]:
    """What the account's number receives: every text a customer sends it."""
    received: list[dict[str, str]] = []
    webapp.handlers["/sms"] = lambda params: received.append(params)
    network.configure_number(SURVEY_NUMBER, sms_url=webapp.url("/sms"))
    return received


def ask(client: Client, body: str, to: str = CUSTOMER) -> str:
    return client.messages.create(to=to, from_=SURVEY_NUMBER, body=body).sid


def delivered_at(network: PhoneNetwork, sid: str) -> datetime:
    (entry,) = [
        entry
        for entry in network.journal.messages
        if entry.message_sid == sid and entry.status == "delivered"
    ]
    return entry.at


def bodies(inbox: list[dict[str, str]]) -> list[str]:
    return [params["Body"] for params in inbox]


class TextSurvey:
    """The product's part, as small as a test can make it: each reply from a customer
    gets the next question, then the thanks; STOP and HELP get nothing more (Twilio
    answered them); a reply after `closes_after` seconds gets "This survey has closed"."""

    def __init__(
        self,
        client: Client,
        clock: SimClock,
        questions: list[str],
        closes_after: float | None = None,
    ) -> None:
        self.client, self.clock, self.questions = client, clock, questions
        self.closes_after = closes_after
        self.received: list[dict[str, str]] = []
        self._asked: dict[str, int] = {}
        self._opened: dict[str, datetime] = {}

    def open(self, customer: str) -> None:
        self._asked[customer], self._opened[customer] = 1, self.clock.now()
        ask(self.client, self.questions[0], customer)

    def __call__(self, params: dict[str, str]) -> None:
        self.received.append(params)
        customer = params["From"]
        if params.get("OptOutType") in ("STOP", "HELP"):
            return
        age = (self.clock.now() - self._opened[customer]).total_seconds()
        if self.closes_after is not None and age > self.closes_after:
            ask(self.client, CLOSED, customer)
            return
        asked = self._asked[customer]
        if asked < len(self.questions):
            self._asked[customer] = asked + 1
            ask(self.client, self.questions[asked], customer)
        elif asked == len(self.questions):
            self._asked[customer] = asked + 1
            ask(self.client, THANKS, customer)

    def replies_from(self, customer: str) -> list[str]:
        return [params["Body"] for params in self.received if params["From"] == customer]


@pytest.fixture
def text_survey(
    network: PhoneNetwork, webapp: TwimlApp, twilio_client: Client, clock: SimClock
) -> Callable[..., TextSurvey]:
    def start(questions: list[str], closes_after: float | None = None) -> TextSurvey:
        survey = TextSurvey(twilio_client, clock, questions, closes_after)
        webapp.handlers["/sms"] = survey
        network.configure_number(SURVEY_NUMBER, sms_url=webapp.url("/sms"))
        return survey

    return start


# -- answering ------------------------------------------------------------------------
def test_a_customer_answers_the_question_on_its_scale_a_few_minutes_later(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    network.set_texter(CUSTOMER, TextPersona.answering("promoter"))
    sid = ask(twilio_client, INTRO + "\n" + NPS)
    network.run_until_idle()

    (params,) = inbox
    assert (params["From"], params["To"], params["AccountSid"]) == (
        CUSTOMER,
        SURVEY_NUMBER,
        ACCOUNT_SID,
    )
    assert number_in(params["Body"]) in (9, 10)
    (reply,) = network.messages_from(CUSTOMER)
    assert reply.sid == params["MessageSid"] and reply.direction == "inbound"
    waited = (reply.date_created - delivered_at(network, sid)).total_seconds()
    assert 20 <= waited <= 300
    # Journaled like any inbound text, and fetchable over the API.
    assert [
        (entry.direction, entry.body)
        for entry in network.journal.messages
        if entry.from_ == CUSTOMER
    ] == [("inbound", params["Body"])]
    assert twilio_client.messages(reply.sid).fetch().body == params["Body"]
    thread = network.text_thread(CUSTOMER, SURVEY_NUMBER)
    assert thread is not None and (thread.target, thread.asked, thread.answered) == (
        "promoter",
        1,
        1,
    )


@pytest.mark.parametrize(
    ("question", "kind", "low", "high", "language"),
    [
        (NPS, "scale", 0, 10, "en"),
        (CSAT, "scale", 1, 5, "en"),
        (CES, "scale", 1, 7, "en"),
        (RESOLVED, "yesno", 0, 0, "en"),
        (COMMENT, "comment", 0, 0, "en"),
        (NPS_ES, "scale", 0, 10, "es"),
        (CSAT_ES, "scale", 1, 5, "es"),
        (RESOLVED_ES, "yesno", 0, 0, "es"),
        (COMMENT_ES, "comment", 0, 0, "es"),
        (NPS_PL, "scale", 0, 10, "pl"),
        (CES_PL, "scale", 1, 7, "pl"),
        (RESOLVED_PL, "yesno", 0, 0, "pl"),
        (COMMENT_PL, "comment", 0, 0, "pl"),
    ],
)
def test_the_reply_fits_the_question_in_its_language(
    network: PhoneNetwork,
    twilio_client: Client,
    inbox: list[dict[str, str]],
    question: str,
    kind: str,
    low: int,
    high: int,
    language: str,
) -> None:
    network.set_texter(CUSTOMER, TextPersona.answering("passive", skip_share=0.0))
    ask(twilio_client, question)
    network.run_until_idle()

    (body,) = bodies(inbox)
    if kind == "scale":
        assert low <= number_in(body) <= high
        if high == 10:
            assert number_in(body) in (7, 8)  # a passive's NPS
    elif kind == "yesno":
        yes_or_no(body, language)
    else:
        assert body in COMMENTS[language][1]  # a passive's comment, in the language


@pytest.mark.parametrize(
    ("form", "question", "pattern"),
    [
        ("plain", NPS, r"(9|10)"),
        ("fraction", NPS, r"(9|10)/10"),
        ("fraction", CSAT, r"[45]/5"),
        ("word", NPS, r"([Nn]ine|[Tt]en)"),
        ("word", NPS_ES, r"([Nn]ueve|[Dd]iez)"),
        ("word", NPS_PL, r"([Dd]ziewięć|[Dd]ziesięć)"),
        ("exclaimed", NPS, r"(9|10)!"),
        ("out_of", NPS, r"(9|10) out of 10"),
        ("out_of", CES, r"[5-7] out of 7"),
        ("out_of", NPS_ES, r"(9|10) de 10"),
        ("out_of", NPS_PL, r"(9|10) na 10"),
        ("letter", RESOLVED, r"[YN]"),
        ("letter", RESOLVED_ES, r"[SN]"),
        ("letter", RESOLVED_PL, r"[TN]"),
        ("exclaimed", RESOLVED_PL, r"(Tak|Nie)!"),
        ("letter", NPS, r"(9|10)"),  # a scale has no letter: written plainly
    ],
)
def test_answers_are_written_as_customers_write_them(
    network: PhoneNetwork,
    twilio_client: Client,
    inbox: list[dict[str, str]],
    form: str,
    question: str,
    pattern: str,
) -> None:
    network.set_texter(CUSTOMER, TextPersona.answering("promoter", forms=(form,)))
    ask(twilio_client, question)
    network.run_until_idle()

    (body,) = bodies(inbox)
    assert re.fullmatch(pattern, body), body


def test_customers_write_their_answers_in_varied_forms(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    customers = [f"+1212555{n:04d}" for n in range(24)]
    for customer in customers:
        network.set_texter(customer, TextPersona.answering())
        ask(twilio_client, NPS, customer)
    network.run_until_idle()

    written = bodies(inbox)
    assert len(written) == len(customers)
    assert all(0 <= number_in(body) <= 10 for body in written)
    assert any(re.fullmatch(r"\d+", body) for body in written)
    assert any("/" in body for body in written)
    assert any("out of" in body for body in written)
    assert any(body.endswith("!") for body in written)
    assert any(body[0].isalpha() for body in written)


def test_a_yes_is_twilios_opt_in_word_and_its_reply_gets_no_answer(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    """YES is one of Twilio's START words: it answers with its re-subscribe text, which
    says "Reply HELP ... Reply STOP" but asks nothing the customer would answer."""
    network.set_texter(CUSTOMER, TextPersona.answering("promoter", forms=("word",)))
    # The promoter's yes, for this seed: a detractor's no would not be a keyword.
    ask(twilio_client, RESOLVED)
    network.run_until_idle()

    (params,) = inbox
    assert (params["Body"], params["OptOutType"]) == ("Yes", "START")
    twilio_reply = network.messages_to(CUSTOMER)[-1]
    assert twilio_reply.direction == "outbound-reply" and twilio_reply.status == "delivered"
    assert len(network.messages_from(CUSTOMER)) == 1


# -- coherence ------------------------------------------------------------------------
def test_a_customers_answers_agree_with_each_other_each_on_its_own_scale(
    network: PhoneNetwork, clock: SimClock, text_survey: Callable[..., TextSurvey]
) -> None:
    survey = text_survey([NPS, CSAT, CES, RESOLVED])
    promoters = [f"+1212555{n:04d}" for n in range(10)]
    detractors = [f"+1312555{n:04d}" for n in range(10)]
    for customer in promoters:
        network.set_texter(customer, TextPersona.answering("promoter", forms=("plain",)))
        survey.open(customer)
    for customer in detractors:
        network.set_texter(customer, TextPersona.answering("detractor", forms=("plain",)))
        survey.open(customer)
    network.run_until_idle()

    answers = {customer: survey.replies_from(customer) for customer in promoters + detractors}
    assert all(len(replies) == 4 for replies in answers.values())
    nps = {customer: int(replies[0]) for customer, replies in answers.items()}
    csat = {customer: int(replies[1]) for customer, replies in answers.items()}
    ces = {customer: int(replies[2]) for customer, replies in answers.items()}
    solved = {customer: yes_or_no(replies[3], "en") for customer, replies in answers.items()}

    assert all(nps[customer] in (9, 10) for customer in promoters)
    assert all(0 <= nps[customer] <= 6 for customer in detractors)
    assert all(1 <= value <= 5 for value in csat.values())
    assert all(1 <= value <= 7 for value in ces.values())
    # Mostly satisfied, mostly not, with some noise: the CSAT and CES follow the NPS.
    assert all(csat[customer] >= 4 for customer in promoters)
    assert all(ces[customer] >= 5 for customer in promoters)
    assert sum(csat[customer] for customer in detractors) / len(detractors) <= 3.0
    assert sum(ces[customer] for customer in detractors) / len(detractors) <= 4.0
    assert sum(solved[customer] for customer in promoters) >= 8
    assert sum(solved[customer] for customer in detractors) <= 7
    assert len(set(csat.values())) > 2  # not one fixed answer per target


# -- late, never ----------------------------------------------------------------------
def test_a_late_customer_answers_the_next_day_and_the_closed_notice_gets_no_reply(
    network: PhoneNetwork, clock: SimClock, text_survey: Callable[..., TextSurvey]
) -> None:
    survey = text_survey([NPS, CSAT], closes_after=24 * 3600)
    network.set_texter(CUSTOMER, TextPersona.late(hours=26))
    survey.open(CUSTOMER)
    network.run_until_idle()

    (late,) = network.messages_from(CUSTOMER)
    (question,) = [m for m in network.messages_to(CUSTOMER) if m.body == NPS]
    assert late.date_created - delivered_at(network, question.sid) == timedelta(hours=26)
    assert 0 <= number_in(late.body) <= 10
    closed = network.messages_to(CUSTOMER)[-1]
    assert (closed.body, closed.status) == (CLOSED, "delivered")
    assert survey.replies_from(CUSTOMER) == [late.body]


def test_only_the_late_question_is_late(
    network: PhoneNetwork, text_survey: Callable[..., TextSurvey]
) -> None:
    survey = text_survey([NPS, CSAT, CES])
    network.set_texter(CUSTOMER, TextPersona.late(hours=5, at_question=2))
    survey.open(CUSTOMER)
    network.run_until_idle()

    replies = network.messages_from(CUSTOMER)
    questions = [m for m in network.messages_to(CUSTOMER) if m.body in (NPS, CSAT, CES)]
    waits = [
        (reply.date_created - delivered_at(network, question.sid)).total_seconds()
        for reply, question in zip(replies, questions, strict=True)
    ]
    assert waits[1] == 5 * 3600
    assert all(20 <= wait <= 300 for wait in (waits[0], waits[2]))


def test_a_reminder_before_the_customer_answered_gets_no_reply_of_its_own(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    network.set_texter(CUSTOMER, TextPersona.late(hours=3))
    ask(twilio_client, NPS)
    ask(twilio_client, "A reminder: " + NPS)
    network.run_until_idle()

    assert len(inbox) == 1


def test_a_silent_customer_never_replies(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    network.set_texter(CUSTOMER, TextPersona.silent())
    sid = ask(twilio_client, INTRO + "\n" + NPS)
    network.run_until_idle()

    assert network.message(sid).status == "delivered"
    assert inbox == [] and network.messages_from(CUSTOMER) == []


def test_a_customer_with_no_texter_never_replies(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    """The network's default (no text_persona_mix): only texts a test asks for."""
    ask(twilio_client, NPS)
    network.run_until_idle()
    assert network.texter_for(CUSTOMER) is None
    assert inbox == []


def test_a_question_that_is_not_delivered_gets_no_reply(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    network.set_texter(CUSTOMER, TextPersona.answering())
    network.set_message_fate(CUSTOMER, "undelivered", 30003)
    ask(twilio_client, NPS)
    network.run_until_idle()
    assert inbox == []


# -- nonsense, re-asks -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "reask", "language"),
    [
        (NPS, "Sorry, we did not understand that. ", "en"),
        (NPS_ES, "Perdón, no lo entendimos. ", "es"),
        (NPS_PL, "Przepraszamy, nie zrozumieliśmy. ", "pl"),
    ],
)
def test_nonsense_first_then_a_valid_answer_after_the_reask(
    network: PhoneNetwork,
    twilio_client: Client,
    inbox: list[dict[str, str]],
    question: str,
    reask: str,
    language: str,
) -> None:
    network.set_texter(CUSTOMER, TextPersona.nonsense_first(("what?",), target="detractor"))
    ask(twilio_client, question)
    network.run_until_idle()
    assert bodies(inbox) == ["what?"]

    ask(twilio_client, reask + question)
    network.run_until_idle()
    answer = bodies(inbox)[-1]
    assert re.fullmatch(r"\d+", answer)  # after a re-ask, written plainly
    assert 0 <= int(answer) <= 6


def test_several_nonsense_replies_one_per_try(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    network.set_texter(CUSTOMER, TextPersona.nonsense_first(("🤔", "100"), at_question=2))
    ask(twilio_client, RESOLVED)
    network.run_until_idle()
    ask(twilio_client, CSAT)
    network.run_until_idle()
    ask(twilio_client, REASK + CSAT)
    network.run_until_idle()
    ask(twilio_client, REASK + CSAT)
    network.run_until_idle()

    first, *nonsense, answer = bodies(inbox)
    yes_or_no(first, "en")
    assert nonsense == ["🤔", "100"]
    assert 1 <= int(answer) <= 5
    thread = network.text_thread(CUSTOMER, SURVEY_NUMBER)
    assert thread is not None and (thread.asked, thread.answered) == (2, 2)


def test_a_reask_after_a_valid_answer_gets_the_same_answer_again(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    network.set_texter(CUSTOMER, TextPersona.answering(forms=("out_of",)))
    ask(twilio_client, CES)
    network.run_until_idle()
    ask(twilio_client, REASK + CES)
    network.run_until_idle()

    first, again = bodies(inbox)
    assert re.fullmatch(r"\d out of 7", first)
    assert again == str(number_in(first))


# -- STOP, HELP ----------------------------------------------------------------------
def test_stop_at_the_first_text_opts_the_customer_out(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    network.set_texter(CUSTOMER, TextPersona.stops())
    ask(twilio_client, INTRO + "\n" + NPS)
    network.run_until_idle()

    assert [(p["Body"], p["OptOutType"]) for p in inbox] == [("STOP", "STOP")]
    assert network.opted_out(SURVEY_NUMBER, CUSTOMER)
    assert [(c.customer, c.keyword, c.opted_out) for c in network.journal.opt_outs] == [
        (CUSTOMER, "STOP", True)
    ]
    # Twilio's confirmation reached the customer and got no reply.
    assert "unsubscribed" in network.messages_to(CUSTOMER)[-1].body
    with pytest.raises(TwilioRestException) as refused:
        ask(twilio_client, NPS)
    assert refused.value.code == 21610


def test_stop_after_two_answers_combined_with_a_late_first_answer(
    network: PhoneNetwork, clock: SimClock, text_survey: Callable[..., TextSurvey]
) -> None:
    survey = text_survey([NPS, CSAT, CES, COMMENT])
    network.set_texter(CUSTOMER, TextPersona.late(hours=2).with_(stop_after=2))
    survey.open(CUSTOMER)
    network.run_until_idle()

    first, second, stop = survey.replies_from(CUSTOMER)
    assert 0 <= number_in(first) <= 10 and 1 <= number_in(second) <= 5
    assert stop == "STOP"
    assert network.opted_out(SURVEY_NUMBER, CUSTOMER)
    assert network.messages_from(CUSTOMER)[0].date_created >= START + timedelta(hours=2)


def test_help_then_the_answer_after_reading_the_reply(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    network.set_texter(CUSTOMER, TextPersona.asks_help(target="promoter"))
    ask(twilio_client, INTRO + "\n" + NPS)
    network.run_until_idle()

    (help_, answer) = inbox
    assert (help_["Body"], help_["OptOutType"]) == ("HELP", "HELP")
    assert "OptOutType" not in answer and number_in(answer["Body"]) in (9, 10)
    twilio_reply = next(m for m in network.messages_to(CUSTOMER) if m.direction == "outbound-reply")
    (help_text, answer_text) = network.messages_from(CUSTOMER)
    assert help_text.date_created <= twilio_reply.date_created
    assert delivered_at(network, twilio_reply.sid) < answer_text.date_created
    assert not network.opted_out(SURVEY_NUMBER, CUSTOMER)


# -- texts that ask nothing -------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        THANKS,
        CLOSED,
        "Customer support customer survey after your support call. Reply STOP to opt out "
        "of survey calls and texts.",
        "You will get no more survey calls or texts from Customer support.",
        "¡Gracias por su opinión!",
        "Esta encuesta ha terminado. Gracias por su tiempo.",
        "Encuesta de Atención al cliente tras su llamada de soporte. Responda STOP para no "
        "recibir más llamadas ni mensajes de encuesta.",
        "Dziękujemy za opinię!",
        "Ta ankieta jest już zamknięta. Dziękujemy.",
        "Nie dostaniesz już telefonów ani wiadomości z ankietą od Obsługa klienta.",
        "Questions? Call 212-555-0142 from 9 to 17. Reply STOP to opt out.",
    ],
)
def test_a_text_that_asks_nothing_gets_no_reply(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]], body: str
) -> None:
    network.set_texter(CUSTOMER, TextPersona.answering())
    ask(twilio_client, body)
    network.run_until_idle()
    assert inbox == []


# -- the mix, determinism --------------------------------------------------------------
def _run_cohort(seed: int, customers: list[str]) -> list[tuple[str, str, float]]:
    """A network with `seed` and the default mix; one NPS question to each customer.
    What they texted back: (customer, body, seconds after the start)."""
    network = PhoneNetwork(
        ACCOUNT_SID,
        AUTH_TOKEN,
        clock=SimClock(START),
        seed=seed,
        text_persona_mix=TextPersonaMix.default(),
    )
    with network:
        client = Client(
            ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(network.api_base)
        )
        for customer in customers:
            ask(client, INTRO + "\n" + NPS, customer)
        network.run_until_idle()
        return [
            (m.from_, m.body, (m.date_created - START).total_seconds())
            for m in network.messages
            if m.direction == "inbound"
        ]


def test_the_same_seed_gives_the_same_replies_at_the_same_times() -> None:
    customers = [f"+1415555{n:04d}" for n in range(30)]
    first = _run_cohort(11, customers)

    assert first == _run_cohort(11, customers)
    assert first != _run_cohort(12, customers)
    # The default mix: most reply, some never do.
    assert 10 < len({customer for customer, _, _ in first}) < len(customers)


def test_the_mix_gives_each_behaviour_its_share_stably_per_number() -> None:
    mix = TextPersonaMix.default()
    numbers = [f"+1646555{n:04d}" for n in range(600)]
    chosen = [mix.choose(5, number) for number in numbers]

    assert chosen == [mix.choose(5, number) for number in numbers]
    names = [persona.name for persona in chosen]
    weights = {persona.name: weight for weight, persona in mix.weighted}
    total = sum(weights.values())
    for name, weight in weights.items():
        assert abs(names.count(name) / len(numbers) - weight / total) < 0.05, name
    for persona in chosen:
        if persona.name == "random_late":
            assert persona.late_seconds is not None and persona.late_seconds >= 20 * 3600
        elif persona.name == "random_nonsense":
            assert len(persona.nonsense) == 1 and persona.nonsense[0] in NONSENSE
        elif persona.name == "random_stops":
            assert persona.stop_after in (0, 1, 2)
        elif persona.name == "random_help":
            assert persona.help_at in (1, 2)


def test_the_mix_is_used_for_customers_given_no_texter(
    network: PhoneNetwork, twilio_client: Client, inbox: list[dict[str, str]]
) -> None:
    network.text_persona_mix = TextPersonaMix(((1.0, TextPersona.stops()),))
    network.set_texter("+12125550199", TextPersona.silent())
    ask(twilio_client, NPS)
    ask(twilio_client, NPS, "+12125550199")
    network.run_until_idle()

    assert [(p["From"], p["Body"]) for p in inbox] == [(CUSTOMER, "STOP")]


# -- reading a question ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (INTRO + "\n" + NPS, Question("scale", "en", 0, 10)),
        (CSAT, Question("scale", "en", 1, 5)),
        (CES, Question("scale", "en", 1, 7)),
        (RESOLVED, Question("yesno", "en")),
        (COMMENT, Question("comment", "en")),
        (NPS_ES, Question("scale", "es", 0, 10)),
        (CSAT_ES, Question("scale", "es", 1, 5)),
        (
            "Responda con un número del 1 (muy difícil) al 7 (muy fácil).",
            Question("scale", "es", 1, 7),
        ),
        (RESOLVED_ES, Question("yesno", "es")),
        (COMMENT_ES, Question("comment", "es")),
        (NPS_PL, Question("scale", "pl", 0, 10)),
        (
            "Odpowiedz liczbą od 1 (bardzo niezadowolony) do 5 (bardzo zadowolony).",
            Question("scale", "pl", 1, 5),
        ),
        (CES_PL, Question("scale", "pl", 1, 7)),
        (RESOLVED_PL, Question("yesno", "pl")),
        (COMMENT_PL, Question("comment", "pl")),
        (REASK + CSAT, Question("scale", "en", 1, 5, reask=True)),
        ("Perdón, no lo entendimos. " + RESOLVED_ES, Question("yesno", "es", reask=True)),
        ("Przepraszamy, nie zrozumieliśmy. " + COMMENT_PL, Question("comment", "pl", reask=True)),
        # A survey's own wording.
        ("How likely are you to recommend us, 0-10?", Question("scale", "en", 0, 10)),
        ("On a scale of 1 to 5, how did we do?", Question("scale", "en", 1, 5)),
        ("¿Qué nota nos da? Del 0 al 10", Question("scale", "es", 0, 10)),
        ("Anything else? Reply SKIP if not.", Question("comment", "en")),
        ("Sorry for the wait!", None),
        ("Open 9-5, call 212-555-0142. Reply STOP to opt out.", None),
        ("Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.", None),
    ],
)
def test_reading_the_question_of_a_text(body: str, expected: Question | None) -> None:
    assert read_question(body) == expected


_TEMPLATES = {
    "en": "Reply with a number from {low} to {high}.",
    "es": "Responda con un número del {low} al {high}.",
    "pl": "Odpowiedz liczbą od {low} do {high}.",
}


@given(
    low=st.integers(0, 10),
    span=st.integers(1, 90),
    language=st.sampled_from(sorted(_TEMPLATES)),
    seed=st.integers(0, 10_000),
)
def test_any_range_is_read_and_answered_within_it(
    low: int, span: int, language: str, seed: int
) -> None:
    high = low + span
    body = "Please rate us. " + _TEMPLATES[language].format(low=low, high=high)
    assert read_question(body) == Question("scale", language, low, high)

    thread = TextPersona.answering().thread(random.Random(seed))
    ((delay, answer),) = thread.read(body)
    assert 20 <= delay <= 300
    assert low <= number_in(answer) <= high


@pytest.mark.parametrize(
    "options",
    [
        {"target": "fan"},
        {"reply_seconds": (60.0, 10.0)},
        {"reply_seconds": (-1.0, 10.0)},
        {"late_seconds": -5.0},
        {"forms": ("roman",)},
        {"forms": ()},
        {"late_at": 0},
        {"nonsense_at": 0},
        {"help_at": 0},
        {"stop_after": -1},
    ],
)
def test_a_persona_that_cannot_be_played_is_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TextPersona(**options)  # type: ignore[arg-type]
