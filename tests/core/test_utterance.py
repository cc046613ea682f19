import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from num2words import num2words

from core.survey import QuestionKind
from core.utterance import (
    CONFIDENCE_FLOOR,
    CONFIRM_BELOW,
    MAX_SPEECH_CHARS,
    Heard,
    NotUnderstood,
    SaidOptOut,
    confirmation,
    hints,
    interpret,
    parse_confidence,
)
from core.utterance_words import WORDS
from ivr.keypad import Rejection
from ivr.twiml import twilio_language

NPS, CSAT, CES, YESNO = QuestionKind.NPS, QuestionKind.CSAT, QuestionKind.CES, QuestionKind.YESNO
SCALED = [NPS, CSAT, CES, YESNO]
LANGUAGES = ["en", "es", "pl"]

# Expected outcomes besides a value on the scale.
OPT_OUT = "opt-out"
INVALID = "invalid"
NO_INPUT = "no input"

ENGLISH = [
    # Numbers, as words and as the digits the recogniser usually writes.
    (NPS, "ten", 10),
    (NPS, "10", 10),
    (NPS, "Nine.", 9),
    (NPS, "ten!", 10),
    (NPS, "TEN", 10),
    (NPS, "zero", 0),
    (NPS, "0", 0),
    (NPS, "a nine", 9),
    (NPS, "I'd say a nine", 9),
    (NPS, "I'd give it an eight", 8),
    (NPS, "a perfect ten", 10),
    (NPS, "Nine, nine.", 9),
    (NPS, "nine out of ten", 9),
    (NPS, "9 out of 10", 9),
    (NPS, "9/10", 9),
    (NPS, "10 out of 10", 10),
    (NPS, "nine over ten", 9),
    (NPS, "On a scale of one to ten, I'd say eight.", 8),
    (NPS, "I don't know, maybe a six", 6),
    (NPS, "Not bad, eight.", 8),
    # What recognisers write for a spoken number.
    (NPS, "Nein.", 9),
    (NPS, "niner", 9),
    (NPS, "For.", 4),
    (NPS, "I'd say for", 4),
    (NPS, "too", 2),
    (NPS, "won", 1),
    (NPS, "Ate.", 8),
    (NPS, "a tree", 3),
    (NPS, "free", 3),
    (NPS, "nine for sure", 9),  # "for" beside a real number is just a word
    (NPS, "I have to say a seven", 7),
    (NPS, "I have to go", INVALID),
    # Not one answer on the scale.
    (NPS, "seven or eight", INVALID),
    (NPS, "between 5 and 6", INVALID),
    (NPS, "nine, no, eight", INVALID),
    (NPS, "eleven", INVALID),
    (NPS, "twenty-one", INVALID),
    (NPS, "one zero", INVALID),
    (NPS, "nine and a half", INVALID),
    (NPS, "I wouldn't give it a ten", INVALID),
    (NPS, "I don't know", INVALID),
    (NPS, "hello? who is this?", INVALID),
    (NPS, "", NO_INPUT),
    (NPS, "   ", NO_INPUT),
    # Opt-outs, whatever the question.
    (NPS, "stop calling me", OPT_OUT),
    (NPS, "Please don't call me again.", OPT_OUT),
    (CSAT, "Remove me from your list.", OPT_OUT),
    (YESNO, "unsubscribe", OPT_OUT),
    (YESNO, "No. Stop calling me!", OPT_OUT),
    # CSAT labels and numbers.
    (CSAT, "very satisfied", 5),
    (CSAT, "Satisfied.", 4),
    (CSAT, "neutral", 3),
    (CSAT, "neither satisfied nor dissatisfied", 3),
    (CSAT, "dissatisfied", 2),
    (CSAT, "very dissatisfied", 1),
    (CSAT, "I'm very unhappy", 1),
    (CSAT, "satisfied, a four", 4),
    (CSAT, "five out of five", 5),
    (CSAT, "very satisfied, four", INVALID),
    (CSAT, "not satisfied", INVALID),
    (CSAT, "I'm not very satisfied", INVALID),
    (CSAT, "9", INVALID),
    # CES labels.
    (CES, "very easy", 7),
    (CES, "easy", 6),
    (CES, "somewhat easy", 5),
    (CES, "neither easy nor difficult", 4),
    (CES, "a little difficult", 3),
    (CES, "hard", 2),
    (CES, "very difficult", 1),
    (CES, "it was not easy", INVALID),
    (CES, "seven", 7),
    (CES, "eight", INVALID),
    # Yes and no.
    (YESNO, "yes", 1),
    (YESNO, "Yeah.", 1),
    (YESNO, "yep", 1),
    (YESNO, "sure", 1),
    (YESNO, "yeah for sure", 1),
    (YESNO, "yes, no problem", 1),
    (YESNO, "one", 1),
    (YESNO, "no", 2),
    (YESNO, "Nope.", 2),
    (YESNO, "not really", 2),
    (YESNO, "of course not", 2),
    (YESNO, "I don't think so", 2),
    (YESNO, "2", 2),
    (YESNO, "I'm not sure", INVALID),
    (YESNO, "yes no", INVALID),
    (YESNO, "three", INVALID),
]

SPANISH = [
    (NPS, "diez", 10),
    (NPS, "10", 10),
    (NPS, "¡DIEZ!", 10),
    (NPS, "cero", 0),
    (NPS, "seis", 6),
    (NPS, "siete", 7),
    (NPS, "un nueve", 9),
    (NPS, "Un nueve.", 9),
    (NPS, "le doy un ocho", 8),
    (NPS, "Ocho, ocho.", 8),
    (NPS, "nueve de diez", 9),
    (NPS, "un nueve de diez", 9),
    (NPS, "nueve sobre diez", 9),
    (NPS, "9/10", 9),
    (NPS, "diez de diez", 10),
    (NPS, "del uno al diez, un ocho", 8),
    (NPS, "no sé, un siete", 7),
    # What recognisers write.
    (NPS, "dies", 10),
    (NPS, "Diés.", 10),
    (NPS, "sinco", 5),
    (NPS, "sero", 0),
    (NPS, "nuebe", 9),
    (NPS, "un nuevo", 9),
    (NPS, "cuarto", 4),
    (NPS, "siente", 7),
    (NPS, "siete, lo siente", 7),
    (NPS, "me siente bien", INVALID),
    # Not one answer.
    (NPS, "siete u ocho", INVALID),
    (NPS, "entre cinco y seis", INVALID),
    (NPS, "nueve, no, ocho", INVALID),
    (NPS, "once", INVALID),
    (NPS, "veintiuno", INVALID),
    (NPS, "nueve y medio", INVALID),
    (NPS, "no sé", INVALID),
    (NPS, "hola, ¿quién habla?", INVALID),
    (NPS, "", NO_INPUT),
    # Opt-outs.
    (NPS, "no me llamen", OPT_OUT),
    (NPS, "No me llames más.", OPT_OUT),
    (CSAT, "dejen de llamarme", OPT_OUT),
    (YESNO, "por favor no me vuelvan a llamar", OPT_OUT),
    (CES, "quítenme de la lista", OPT_OUT),
    # CSAT.
    (CSAT, "muy satisfecho", 5),
    (CSAT, "muy satisfecha", 5),
    (CSAT, "estoy muy contenta", 5),
    (CSAT, "satisfecha", 4),
    (CSAT, "neutral", 3),
    (CSAT, "ni satisfecho ni insatisfecho", 3),
    (CSAT, "más o menos", 3),
    (CSAT, "insatisfecho", 2),
    (CSAT, "muy insatisfecha", 1),
    (CSAT, "cinco de cinco", 5),
    (CSAT, "no estoy satisfecho", INVALID),
    (CSAT, "nueve", INVALID),
    # CES.
    (CES, "muy fácil", 7),
    (CES, "fácil", 6),
    (CES, "facil", 6),
    (CES, "algo fácil", 5),
    (CES, "ni fácil ni difícil", 4),
    (CES, "un poco difícil", 3),
    (CES, "difícil", 2),
    (CES, "muy dificil", 1),
    (CES, "no fue fácil", INVALID),
    # Yes and no.
    (YESNO, "sí", 1),
    (YESNO, "si", 1),
    (YESNO, "Sí, claro.", 1),
    (YESNO, "por supuesto", 1),
    (YESNO, "sí, no hay problema", 1),
    (YESNO, "uno", 1),
    (YESNO, "no", 2),
    (YESNO, "No.", 2),
    (YESNO, "claro que no", 2),
    (YESNO, "para nada", 2),
    (YESNO, "dos", 2),
    (YESNO, "no sé", INVALID),
    (YESNO, "sí y no", INVALID),
]

POLISH = [
    (NPS, "dziewięć", 9),
    (NPS, "dziesięć", 10),
    (NPS, "Dziewięć.", 9),
    (NPS, "DZIESIĘĆ!", 10),
    (NPS, "dziewiec", 9),  # without diacritics
    (NPS, "dziesiec", 10),
    (NPS, "piec", 5),
    (NPS, "szesc", 6),
    (NPS, "zero", 0),
    (NPS, "jeden", 1),
    (NPS, "siedem", 7),
    (NPS, "osiem, osiem", 8),
    (NPS, "dałbym osiem", 8),
    (NPS, "dziewięć na dziesięć", 9),
    (NPS, "10 z 10", 10),
    (NPS, "osiem z dziesięciu", 8),
    (NPS, "9/10", 9),
    (NPS, "daję dziewiątkę", 9),
    (NPS, "dziesiątka", 10),
    (NPS, "od zera do dziesięciu, osiem", 8),
    (NPS, "w skali od jednego do dziesięciu dziewięć", 9),
    (NPS, "nie wiem, chyba siedem", 7),
    # What recognisers write.
    (NPS, "szejść", 6),
    (NPS, "dziewienć", 9),
    (NPS, "pienć", 5),
    # Not one answer.
    (NPS, "siedem albo osiem", INVALID),
    (NPS, "między pięć a sześć", INVALID),
    (NPS, "dziewięć, nie, osiem", INVALID),
    (NPS, "jedenaście", INVALID),
    (NPS, "dwadzieścia jeden", INVALID),
    (NPS, "dziewięć i pół", INVALID),
    (NPS, "nie wiem", INVALID),
    (NPS, "dzień dobry, kto mówi?", INVALID),
    (NPS, "", NO_INPUT),
    # Opt-outs, before anything else: "nie dzwońcie" is no "nie".
    (YESNO, "nie dzwońcie", OPT_OUT),
    (NPS, "nie dzwońcie do mnie", OPT_OUT),
    (CSAT, "proszę nie dzwonić", OPT_OUT),
    (YESNO, "nie dzwoncie do mnie wiecej", OPT_OUT),
    (CES, "przestańcie do mnie dzwonić", OPT_OUT),
    # CSAT.
    (CSAT, "bardzo zadowolony", 5),
    (CSAT, "bardzo zadowolona", 5),
    (CSAT, "zadowolony", 4),
    (CSAT, "zadowolona", 4),
    (CSAT, "neutralnie", 3),
    (CSAT, "obojętny", 3),
    (CSAT, "tak sobie", 3),
    (CSAT, "niezadowolony", 2),
    (CSAT, "niezadowolona", 2),
    (CSAT, "nie zadowolony", 2),  # sounds exactly like "niezadowolony"
    (CSAT, "bardzo niezadowolona", 1),
    (CSAT, "pięć na pięć", 5),
    (CSAT, "nie jestem zadowolony", INVALID),
    (CSAT, "dziewięć", INVALID),
    # CES.
    (CES, "bardzo łatwo", 7),
    (CES, "bardzo latwo", 7),
    (CES, "łatwo", 6),
    (CES, "raczej łatwo", 5),
    (CES, "ani łatwo, ani trudno", 4),
    (CES, "raczej trudno", 3),
    (CES, "trudno", 2),
    (CES, "bardzo trudno", 1),
    (CES, "trudno powiedzieć", INVALID),
    (CES, "nie było łatwo", INVALID),
    # Yes and no.
    (YESNO, "tak", 1),
    (YESNO, "Tak.", 1),
    (YESNO, "no tak", 1),  # colloquial "no" is "well", not the English no
    (YESNO, "jasne", 1),
    (YESNO, "oczywiście", 1),
    (YESNO, "jeden", 1),
    (YESNO, "nie", 2),
    (YESNO, "Nie.", 2),
    (YESNO, "raczej nie", 2),
    (YESNO, "dwa", 2),
    (YESNO, "tak sobie", INVALID),
    (YESNO, "tak, nie", INVALID),
    (YESNO, "nie wiem", INVALID),
]


def outcome(result):
    """A result as the tables write it: a value, OPT_OUT, INVALID or NO_INPUT."""
    match result:
        case Heard(value=value):
            return value
        case SaidOptOut():
            return OPT_OUT
        case NotUnderstood(reason=Rejection.NO_INPUT):
            return NO_INPUT
        case NotUnderstood(reason=Rejection.INVALID):
            return INVALID
    raise AssertionError(result)


def test_each_language_has_a_full_table():
    for table in (ENGLISH, SPANISH, POLISH):
        assert len(table) >= 50


@pytest.mark.parametrize(
    ("language", "kind", "speech", "expected"),
    [("en", *case) for case in ENGLISH]
    + [("es", *case) for case in SPANISH]
    + [("pl", *case) for case in POLISH],
)
def test_interpret(language, kind, speech, expected):
    assert outcome(interpret(kind, language, speech, "0.92")) == expected


def test_a_heard_answer_keeps_the_transcript_and_confidence():
    assert interpret(NPS, "en", " Nine. ", "0.93") == Heard(9, "Nine.", 0.93, confirm=False)


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [
        ("0.95", Heard(9, "nine", 0.95, confirm=False)),
        (str(CONFIRM_BELOW), Heard(9, "nine", CONFIRM_BELOW, confirm=False)),
        ("0.59", Heard(9, "nine", 0.59, confirm=True)),
        (str(CONFIDENCE_FLOOR), Heard(9, "nine", CONFIDENCE_FLOOR, confirm=True)),
        ("0.29", NotUnderstood(Rejection.INVALID, "nine")),
        ("0", NotUnderstood(Rejection.INVALID, "nine")),
        # Unknown confidence: nothing says the recogniser doubted it.
        (None, Heard(9, "nine", None, confirm=False)),
        ("", Heard(9, "nine", None, confirm=False)),
        ("garbage", Heard(9, "nine", None, confirm=False)),
        ("NaN", Heard(9, "nine", None, confirm=False)),
        ("7", Heard(9, "nine", None, confirm=False)),
    ],
)
def test_confidence(confidence, expected):
    assert interpret(NPS, "en", "nine", confidence) == expected


def test_an_opt_out_is_honoured_even_when_the_recogniser_doubts_it():
    assert interpret(NPS, "en", "stop calling me", "0.1") == SaidOptOut("stop calling me")


def test_nothing_said_is_no_input_whatever_the_confidence():
    assert interpret(NPS, "en", "", "0.1") == NotUnderstood(Rejection.NO_INPUT, "")
    assert interpret(NPS, "en", None, None) == NotUnderstood(Rejection.NO_INPUT, "")


def test_only_the_first_characters_are_kept_and_considered():
    long_answer = interpret(NPS, "en", "nine " + "x" * 1000, None)
    assert isinstance(long_answer, Heard)
    assert long_answer.value == 9
    assert len(long_answer.transcript) == MAX_SPEECH_CHARS

    late = interpret(NPS, "en", "x" * MAX_SPEECH_CHARS + " nine", None)
    assert late == NotUnderstood(Rejection.INVALID, "x" * MAX_SPEECH_CHARS)
    late_opt_out = interpret(NPS, "en", "x" * MAX_SPEECH_CHARS + " stop calling me", None)
    assert isinstance(late_opt_out, NotUnderstood)


def test_a_transcript_can_always_be_stored():
    result = interpret(NPS, "en", "nine \ud800 \x00", None)
    assert result == Heard(9, "nine \ufffd \ufffd", None, confirm=False)
    result.transcript.encode("utf-8")


def test_an_unknown_language_is_read_as_english():
    assert interpret(NPS, "xx", "nine", None) == Heard(9, "nine", None, confirm=False)
    assert interpret(NPS, "es-MX", "nueve", None) == Heard(9, "nueve", None, confirm=False)


def test_a_comment_is_recorded_not_interpreted():
    with pytest.raises(ValueError):
        interpret(QuestionKind.COMMENT, "en", "nine", None)
    with pytest.raises(ValueError):
        hints(QuestionKind.COMMENT, "en")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", SCALED)
def test_every_listed_answer_is_understood(language, kind):
    """The data checks itself: no phrase stands for two values or hides another."""
    words = WORDS[language]
    low, high = kind.scale
    expected: list[tuple[str, object]] = [
        (num2words(n, lang=language), n) for n in range(low, high + 1)
    ]
    expected += [
        (form, n) for n, forms in words.more_numbers.items() if low <= n <= high for form in forms
    ]
    expected += [(text, n) for n, forms in words.labels.get(kind, {}).items() for text in forms]
    expected += [(text, OPT_OUT) for text in words.opt_outs]
    for text, value in expected:
        assert outcome(interpret(kind, language, text, None)) == value, text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", SCALED)
def test_hints_fit_twilio_and_are_all_understood(language, kind):
    entries = hints(kind, language).split(", ")
    assert 0 < len(entries) <= 500
    assert len(entries) == len(set(entries))
    for entry in entries:
        assert 0 < len(entry) <= 100
        assert "," not in entry
        assert entry == " ".join(entry.split())  # words separated by single spaces
        assert outcome(interpret(kind, language, entry, None)) != INVALID, entry
    low, high = kind.scale
    for n in range(low, high + 1):
        assert num2words(n, lang=language) in entries


def test_hints_name_the_labels():
    assert "very satisfied" in hints(CSAT, "en").split(", ")
    assert "muy fácil" in hints(CES, "es").split(", ")
    assert "tak" in hints(YESNO, "pl").split(", ")
    assert "nie" in hints(YESNO, "pl").split(", ")
    assert "satisfied" not in hints(NPS, "en").split(", ")


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "en-US"), ("es", "es-US"), ("pl", "pl-PL"), ("xx", "en-US"), ("", "en-US")],
)
def test_twilio_language(language, expected):
    assert twilio_language(language) == expected


@pytest.mark.parametrize(
    ("language", "speech", "digits", "expected"),
    [
        ("en", "yes", None, True),
        ("en", "Yes, nine.", None, True),
        ("en", "that's right", None, True),
        ("en", "correct", None, True),
        ("en", "one", None, True),
        ("en", "1", None, True),
        ("en", "no", None, False),
        ("en", "No, eight.", None, False),
        ("en", "that's not right", None, False),
        ("en", "wrong", None, False),
        ("en", "two", None, False),
        ("en", "nine", None, None),
        ("en", "maybe", None, None),
        ("en", "yes no", None, None),
        ("en", "I'm not sure", None, None),
        ("en", "", None, None),
        ("en", None, None, None),
        ("en", None, "1", True),
        ("en", None, "1#", True),
        ("en", None, "2", False),
        ("en", None, "3", None),
        ("en", None, "12", None),
        ("en", None, "*", None),
        ("en", "no", "1", True),  # keys win
        ("en", "", "", None),
        ("es", "sí", None, True),
        ("es", "Sí, nueve.", None, True),
        ("es", "correcto", None, True),
        ("es", "uno", None, True),
        ("es", "no", None, False),
        ("es", "no es correcto", None, False),
        ("es", "no sé", None, None),
        ("pl", "tak", None, True),
        ("pl", "tak, dziewięć", None, True),
        ("pl", "zgadza się", None, True),
        ("pl", "nie", None, False),
        ("pl", "nie zgadza się", None, False),
        ("pl", "nie wiem", None, None),
        ("xx", "yes", None, True),
    ],
)
def test_confirmation(language, speech, digits, expected):
    assert confirmation(language, speech, digits) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.9312", 0.9312),
        ("0", 0.0),
        ("1", 1.0),
        ("1.0", 1.0),
        ("0.", 0.0),
        (".5", 0.5),
        (" 0.5 ", 0.5),
        (None, None),
        ("", None),
        ("   ", None),
        ("abc", None),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("-0.1", None),
        ("+0.5", None),
        ("1.01", None),
        ("2", None),
        ("1e-1", None),
        ("0,93", None),
        ("0.9.3", None),
        ("0_5", None),
        ("0x1", None),
        ("０.５", None),  # fullwidth digits
        ("9" * 1000, None),
    ],
)
def test_parse_confidence(raw, expected):
    assert parse_confidence(raw) == expected


ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=MAX_SPEECH_CHARS * 2)


@given(
    kind=st.sampled_from(SCALED),
    language=st.sampled_from([*LANGUAGES, "xx"]),
    speech=st.none() | ANY_TEXT,
    confidence=st.none() | ANY_TEXT | st.floats().map(str),
)
def test_interpret_never_raises_and_is_deterministic(kind, language, speech, confidence):
    result = interpret(kind, language, speech, confidence)
    assert result == interpret(kind, language, speech, confidence)
    assert isinstance(result, Heard | NotUnderstood | SaidOptOut)
    assert len(result.transcript) <= MAX_SPEECH_CHARS
    result.transcript.encode("utf-8")
    if isinstance(result, Heard):
        low, high = kind.scale
        assert low <= result.value <= high
        assert result.confidence is None or CONFIDENCE_FLOOR <= result.confidence <= 1
        assert result.confirm == (result.confidence is not None and result.confidence < 0.6)


@given(language=st.sampled_from([*LANGUAGES, "xx"]), speech=st.none() | ANY_TEXT)
def test_confirmation_never_raises(language, speech):
    assert confirmation(language, speech, None) in (True, False, None)


@given(raw=st.none() | st.text(max_size=40) | st.floats().map(str))
def test_parse_confidence_is_a_probability_or_none(raw):
    value = parse_confidence(raw)
    assert value is None or (math.isfinite(value) and 0 <= value <= 1)


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en", "two hundred percent"), ("en", "four hundred"), ("en", "five thousand"),
        ("en", "two million percent"), ("en", "minus one"), ("es", "doscientos por ciento"),
        ("es", "mil"), ("es", "menos uno"), ("pl", "dwieście procent"), ("pl", "tysiąc"),
        ("pl", "minus jeden"),
    ],
)  # fmt: skip
def test_a_magnitude_or_a_sign_makes_no_score(language, said):
    """ "Two hundred percent" is an enthusiast's ten or nothing, never a two."""
    assert isinstance(interpret(NPS, language, said, "0.95"), NotUnderstood)


@pytest.mark.parametrize(
    "said",
    ["I don't call often, nine", "I'd never call them again, zero",
     "remove me from hold faster, 3"],
)  # fmt: skip
def test_a_phrase_that_only_contains_opt_out_words_is_no_opt_out(said):
    assert not isinstance(interpret(NPS, "en", said, "0.95"), SaidOptOut)
