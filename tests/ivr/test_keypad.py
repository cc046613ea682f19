import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.survey import QuestionKind
from ivr.keypad import (
    Answered,
    NeedsSecondDigit,
    OptedOut,
    Rejected,
    Rejection,
    interpret,
)

NPS, CSAT, CES, YESNO = QuestionKind.NPS, QuestionKind.CSAT, QuestionKind.CES, QuestionKind.YESNO


@pytest.mark.parametrize(
    ("kind", "digits", "after_one", "expected"),
    [
        # NPS: one key is final unless it is "1".
        (NPS, "0", False, Answered(0, "0")),
        (NPS, "9", False, Answered(9, "9")),
        (NPS, "1", False, NeedsSecondDigit("1")),
        (NPS, "1#", False, Answered(1, "1#")),
        (NPS, "10", False, Answered(10, "10")),
        (NPS, "11", False, Rejected(Rejection.INVALID, "11")),
        (NPS, "05", False, Rejected(Rejection.INVALID, "05")),
        (NPS, "", False, Rejected(Rejection.NO_INPUT, "")),
        (NPS, None, False, Rejected(Rejection.NO_INPUT, "")),
        (NPS, "#", False, Rejected(Rejection.NO_INPUT, "#")),
        (NPS, "*", False, OptedOut("*")),
        (NPS, "a", False, Rejected(Rejection.INVALID, "a")),
        (NPS, "٣", False, Rejected(Rejection.INVALID, "٣")),  # a non-ASCII digit
        # NPS second stage, after a "1".
        (NPS, "0", True, Answered(10, "10")),
        (NPS, "", True, Answered(1, "1")),
        (NPS, "#", True, Answered(1, "1#")),
        (NPS, "1", True, Rejected(Rejection.INVALID, "11")),
        (NPS, "5", True, Rejected(Rejection.INVALID, "15")),
        (NPS, "*", True, OptedOut("1*")),
        # 1-5, 1-7 and yes/no scales: any single key, final at once.
        (CSAT, "1", False, Answered(1, "1")),
        (CSAT, "5", False, Answered(5, "5")),
        (CSAT, "0", False, Rejected(Rejection.INVALID, "0")),
        (CSAT, "6", False, Rejected(Rejection.INVALID, "6")),
        (CSAT, "*", False, OptedOut("*")),
        (CES, "7", False, Answered(7, "7")),
        (CES, "8", False, Rejected(Rejection.INVALID, "8")),
        (YESNO, "1", False, Answered(1, "1")),
        (YESNO, "2", False, Answered(2, "2")),
        (YESNO, "3", False, Rejected(Rejection.INVALID, "3")),
    ],
)
def test_interpret(kind, digits, after_one, expected):
    assert interpret(kind, digits, after_one=after_one) == expected


def test_very_long_input_is_rejected_and_truncated():
    result = interpret(NPS, "1234567890" * 50)
    assert isinstance(result, Rejected)
    assert result.reason is Rejection.INVALID
    assert len(result.keys) <= 32


def test_comment_questions_have_no_keypad_answer():
    with pytest.raises(ValueError):
        interpret(QuestionKind.COMMENT, "1")


@given(kind=st.sampled_from([NPS, CSAT, CES, YESNO]), digits=st.text(max_size=40))
def test_any_input_gives_an_in_range_answer_or_no_answer(kind, digits):
    result = interpret(kind, digits)
    low, high = kind.scale
    if isinstance(result, Answered):
        assert low <= result.value <= high
    if "*" in digits[:32]:
        assert isinstance(result, OptedOut)


@given(value=st.integers(min_value=0, max_value=10))
def test_every_nps_score_can_be_keyed(value):
    keys = str(value)
    first = interpret(NPS, keys[0])
    if isinstance(first, NeedsSecondDigit):
        second = interpret(NPS, keys[1:], after_one=True)
        assert second == Answered(value, keys)
    else:
        assert first == Answered(value, keys)
