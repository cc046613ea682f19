"""What a customer's text means (sms.replies): keywords, answers on each kind's scale,
comments, opt-out phrases, in English, Spanish and Polish. Pure functions: no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.flow import Rejection
from core.survey import QuestionKind
from sms.replies import (
    MAX_COMMENT,
    Answer,
    Keyword,
    NotUnderstood,
    OptOut,
    interpret,
    keyword,
)

NPS, CSAT, CES = QuestionKind.NPS, QuestionKind.CSAT, QuestionKind.CES
YESNO, COMMENT = QuestionKind.YESNO, QuestionKind.COMMENT
SCALED = [NPS, CSAT, CES, YESNO]


@pytest.mark.parametrize(
    ("kind", "language", "body", "value"),
    [
        (NPS, "en", "9", 9),
        (NPS, "en", "9/10", 9),
        (NPS, "en", "nine", 9),
        (NPS, "en", "10!", 10),
        (NPS, "en", "9 out of 10", 9),
        (NPS, "en", "I'd say 8", 8),
        (NPS, "en", "0", 0),
        (NPS, "en", "ten", 10),
        (NPS, "es", "nueve", 9),
        (NPS, "es", "9 de 10", 9),
        (NPS, "es", "diez", 10),
        (NPS, "pl", "dziewięć", 9),
        (NPS, "pl", "dziewiec", 9),  # typed without the diacritics
        (NPS, "pl", "9 na 10", 9),
        (CSAT, "en", "5", 5),
        (CSAT, "en", "1", 1),
        (CSAT, "en", "very satisfied", 5),
        (CSAT, "es", "cinco", 5),
        (CES, "en", "7", 7),
        (CES, "pl", "siedem", 7),
    ],
)
def test_a_reply_is_read_like_a_key_press(kind, language, body, value):
    assert interpret(kind, language, body) == Answer(value, body)


def test_the_reply_is_kept_trimmed():
    assert interpret(NPS, "en", "  9 \n") == Answer(9, "9")


@pytest.mark.parametrize(
    ("kind", "language", "body", "reason"),
    [
        (NPS, "en", "\U0001f44d", Rejection.INVALID),  # a thumbs-up is no score
        (NPS, "en", "\U0001f44d\U0001f3fd", Rejection.INVALID),
        (NPS, "en", "", Rejection.NO_INPUT),
        (NPS, "en", None, Rejection.NO_INPUT),
        (NPS, "en", "   ", Rejection.NO_INPUT),
        (NPS, "es", "\n\t ", Rejection.NO_INPUT),
        (NPS, "en", "7 8", Rejection.INVALID),  # two numbers
        (NPS, "en", "7 or 8", Rejection.INVALID),
        (NPS, "es", "siete u ocho", Rejection.INVALID),
        (NPS, "en", "11", Rejection.INVALID),  # off the scale
        (NPS, "es", "once", Rejection.INVALID),
        (NPS, "pl", "jedenaście", Rejection.INVALID),
        (NPS, "en", "9.5", Rejection.INVALID),
        (NPS, "en", "banana", Rejection.INVALID),
        (NPS, "en", "YES", Rejection.INVALID),  # a START word, but no score
        (CSAT, "en", "0", Rejection.INVALID),
        (CSAT, "en", "6", Rejection.INVALID),
        (CES, "en", "8", Rejection.INVALID),
        (YESNO, "en", "3", Rejection.INVALID),
        (YESNO, "en", "maybe", Rejection.INVALID),
    ],
)
def test_what_answers_nothing_is_not_understood(kind, language, body, reason):
    result = interpret(kind, language, body)
    assert isinstance(result, NotUnderstood)
    assert result.reason is reason


@pytest.mark.parametrize(
    ("kind", "body"),
    [(NPS, "-1"), (CSAT, "-5"), (CES, "-7"), (CSAT, "\u22125")],  # U+2212, the minus sign
    ids=["nps-minus-1", "csat-minus-5", "ces-minus-7", "csat-unicode-minus-5"],
)
def test_a_negative_number_is_off_the_scale(kind, body):
    # PRODUCT BUG: "-5" is read as 5 (core.utterance._tokens drops the sign), so a CSAT
    # of "-5" is stored as "very satisfied". docs/sms.md: "a number off the scale" is
    # not understood.
    result = interpret(kind, "en", body)
    assert isinstance(result, NotUnderstood), result
    assert result.reason is Rejection.INVALID


@pytest.mark.parametrize(
    ("language", "body", "value"),
    [
        ("en", "y", 1),
        ("en", "Y", 1),
        ("en", "n", 2),
        ("en", "N", 2),
        ("en", "yes", 1),
        ("en", "YES", 1),  # a START keyword word too: the conversation decides
        ("en", "no", 2),
        ("en", "1", 1),
        ("en", "2", 2),
        ("en", "Yes!", 1),
        ("es", "sí", 1),
        ("es", "si", 1),
        ("es", "S", 1),
        ("es", "no", 2),
        ("pl", "tak", 1),
        ("pl", "T", 1),
        ("pl", "nie", 2),
    ],
)
def test_yes_no_replies(language, body, value):
    result = interpret(YESNO, language, body)
    assert isinstance(result, Answer), result
    assert result.value == value


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ("The agent was great, the app is slow", "The agent was great, the app is slow"),
        ("  padded  ", "padded"),
        ("9", "9"),  # a number is a comment too
        ("Me ayudaron mucho \U0001f60a", "Me ayudaron mucho \U0001f60a"),
        ("a\x00b", "a\ufffdb"),  # PostgreSQL refuses NUL in text
        ("x\ud83dy", "x\ufffdy"),  # a lone surrogate is no UTF-8
    ],
)
def test_a_comment_keeps_the_text(body, kept):
    assert interpret(COMMENT, "en", body) == Answer(None, kept)


@pytest.mark.parametrize("body", ["SKIP", "skip", "Skip.", " SKIP ", "saltar", "POMIŃ", "pomin"])
def test_skip_is_an_empty_comment(body):
    assert interpret(COMMENT, "en", body) == Answer(None, "")


def test_a_long_comment_is_cut_to_what_is_kept():
    body = "The agent was helpful. " * 220  # 5,060 characters
    result = interpret(COMMENT, "en", body)
    assert isinstance(result, Answer)
    assert len(result.text) == MAX_COMMENT == 1600
    assert result.text == body[:MAX_COMMENT].strip()


def test_an_empty_comment_is_no_input():
    result = interpret(COMMENT, "en", "  ")
    assert isinstance(result, NotUnderstood)
    assert result.reason is Rejection.NO_INPUT


@pytest.mark.parametrize(
    ("body", "meaning"),
    [
        ("STOP", Keyword.STOP),
        ("stop", Keyword.STOP),
        ("stop.", Keyword.STOP),
        (" Stop ", Keyword.STOP),
        ("Stop!!!", Keyword.STOP),
        ("STOP\n", Keyword.STOP),
        ("STOPALL", Keyword.STOP),
        ("UNSUBSCRIBE", Keyword.STOP),
        ("CANCEL", Keyword.STOP),
        ("END", Keyword.STOP),
        ("end.", Keyword.STOP),
        ("QUIT", Keyword.STOP),
        ("BAJA", Keyword.STOP),
        ("¡Baja!", Keyword.STOP),
        ("parar", Keyword.STOP),
        ("KONIEC", Keyword.STOP),
        ("koniec", Keyword.STOP),
        ("Rezygnuję", Keyword.STOP),
        ("WYPISZ", Keyword.STOP),
        ("HELP", Keyword.HELP),
        ("help?", Keyword.HELP),
        ("INFO", Keyword.HELP),
        ("AYUDA", Keyword.HELP),
        ("¿Ayuda?", Keyword.HELP),
        ("pomoc", Keyword.HELP),
        ("START", Keyword.START),
        ("unstop", Keyword.START),
        ("YES", Keyword.START),
        ("yes", Keyword.START),
        ("ALTA", Keyword.START),
    ],
)
def test_keywords_are_the_whole_message_in_any_case(body, meaning):
    assert keyword(body) is meaning


@pytest.mark.parametrize(
    "body",
    [
        "stop texting me",  # an opt-out phrase, not the keyword
        "Unsubscribe me",
        "S T O P",
        "stopp",
        "help me with my bill",
        "9",
        "Sí",
        "",
        None,
    ],
)
def test_a_message_that_is_not_just_a_keyword_is_none(body):
    assert keyword(body) is None


@pytest.mark.parametrize(
    ("body", "opt_out_type", "meaning"),
    [
        ("9", "STOP", Keyword.STOP),  # Twilio's word wins over the body
        ("hello", "start", Keyword.START),
        ("STOP", "HELP", Keyword.HELP),
        ("anything", "Help", Keyword.HELP),
        ("STOP", "", Keyword.STOP),  # no word from Twilio: the body's
        ("STOP", None, Keyword.STOP),
        ("STOP", "SOMETHING_NEW", Keyword.STOP),
        ("9", "SOMETHING_NEW", None),
    ],
)
def test_twilio_s_opt_out_type_overrides_the_body(body, opt_out_type, meaning):
    assert keyword(body, opt_out_type) is meaning


def test_yes_is_a_start_word_and_a_yes_answer():
    assert keyword("YES") is Keyword.START
    assert interpret(YESNO, "en", "YES") == Answer(1, "YES")


@pytest.mark.parametrize("kind", list(QuestionKind))
@pytest.mark.parametrize(
    ("language", "body"),
    [
        ("en", "stop texting me"),
        ("en", "Please STOP texting me!"),
        ("en", "no more messages"),
        ("en", "Don't text me"),
        ("en", "do not contact me"),
        ("es", "no me escriban"),
        ("es", "No más mensajes"),
        ("pl", "nie piszcie do mnie"),
    ],
)
def test_an_opt_out_phrase_is_an_opt_out_whatever_the_question(kind, language, body):
    assert interpret(kind, language, body) == OptOut(body)


@pytest.mark.parametrize("kind", list(QuestionKind))
def test_a_typographic_apostrophe_opts_out_too(kind):
    # Phones type "Don\u2019t" (a right single quotation mark) by default. PRODUCT BUG for
    # comment questions: sms/replies.py interpret() folds U+2019 to "'" for scale
    # questions only.
    assert interpret(kind, "en", "Don\u2019t text me") == OptOut("Don\u2019t text me")


@pytest.mark.parametrize("kind", list(QuestionKind))
@pytest.mark.parametrize(
    ("language", "body"),
    [("en", "Stop calling me"), ("en", "Remove me from your list"), ("es", "no me llamen")],
)
def test_a_spoken_opt_out_phrase_opts_out_by_text_too(kind, language, body):
    # docs/sms.md lists "stop calling me" among the opt-out phrases of a text. PRODUCT
    # BUG for comment questions: sms/replies.py reads only its own text phrases there,
    # never core.utterance's spoken ones, and keeps the request as a comment.
    assert interpret(kind, language, body) == OptOut(body)


@pytest.mark.parametrize("kind", list(QuestionKind))
def test_a_polish_opt_out_with_its_diacritics(kind):
    # "nie wysyłajcie" (don't send): PRODUCT BUG: sms.replies._folded leaves "ł" as it
    # is (NFKD does not decompose it), so only the ASCII spelling "nie wysylajcie" matches.
    body = "nie wysyłajcie mi wiadomości"
    assert interpret(kind, "pl", body) == OptOut(body)


@pytest.mark.parametrize(
    "body",
    [
        "Your texts were clear and the agent was kind",
        "The agent promised a callback but I never got the message",
        "I don't mind the texts, the agent was great",
        "Never got the text message you mentioned",
        "No more texts needed thanks, all good",
        "Quit my job text",
        "Don't contact support by text, it is slow",
    ],
)
def test_a_comment_about_texts_is_a_comment_not_an_opt_out(body):
    # PRODUCT BUG for the last two: sms.replies._TEXT_OPT_OUT matches "never ...
    # message" and "don't ... texts" anywhere in a message, so a complaint puts the
    # customer on the do-not-call list and its words are no answer.
    assert interpret(COMMENT, "en", body) == Answer(None, body)


@given(
    kind=st.sampled_from(list(QuestionKind)),
    language=st.sampled_from(["en", "es", "pl", "fr", "", "es-MX"]),
    body=st.none()
    | st.text(max_size=2000)
    | st.sampled_from(["9", "10!", "nine", "9/10", "y", "SKIP", "stop texting me", "-3"]),
)
def test_interpret_never_raises_and_answers_on_the_scale(kind, language, body):
    result = interpret(kind, language, body)
    assert isinstance(result, Answer | NotUnderstood | OptOut)
    if isinstance(result, Answer):
        if kind.scale is None:
            assert result.value is None
            assert len(result.text) <= MAX_COMMENT
        else:
            low, high = kind.scale
            assert result.value is not None and low <= result.value <= high
    kept = result.text
    # Whatever is kept can be stored: no NUL (PostgreSQL) and no lone surrogate (UTF-8).
    assert "\x00" not in kept
    kept.encode("utf-8")


@given(body=st.none() | st.text(max_size=300), opt_out_type=st.none() | st.text(max_size=20))
def test_keyword_never_raises(body, opt_out_type):
    assert keyword(body, opt_out_type) in {None, *Keyword}
