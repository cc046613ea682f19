"""scoring.detractors' masking: what a reader without full contact access gets to see."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.masking import MASK, MIN_HIDDEN_DIGITS, Contact, hide_digits, mask_phone
from core.users import ROLES, contact_for_role
from scoring.detractors import Detractor, shown_to


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+14155550123", "+1 415 ••• ••23"),  # United States: area code, last two
        ("+16135550199", "+1 613 ••• ••99"),  # Canada, same plan
        ("+442079460958", "+44 20 •••• ••58"),  # London landline
        ("+447700900123", "+44 •••• ••••23"),  # UK mobile: no area code to show
        ("+33612345678", "+33 • •• •• •• 78"),  # France, grouped in pairs
        ("+5511987654321", "+55 11 ••••• ••21"),  # São Paulo mobile
        ("+819012345678", "+81 •• •••• ••78"),  # Japan mobile
        ("+61412345678", "+61 ••• ••• •78"),  # Australia mobile
        # Berlin, 8 digits: showing the area code too would leave only 4 hidden.
        ("+4930123456", "+49 •• ••••56"),
        ("+1 (415) 555-0123", "+1 415 ••• ••23"),  # not E.164 as stored, same result
    ],
)
def test_numbers_of_several_countries(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+1415", "+••••"),  # too short to be a number: nothing shown
        ("+12345", "+•••••"),
        ("12345", "•••••"),  # a short code
        ("+999123456789", "+••••••••••89"),  # no such country: digits only
        ("4155550123", "••••••••23"),  # national, no country code to read it in
        ("", ""),
        ("purged", "purged"),  # the retention purge's marker is no number
        (None, None),
    ],
)
def test_short_odd_and_missing_numbers(phone, masked):
    assert mask_phone(phone) == masked


def _regions_example_numbers() -> list[str]:
    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                numbers.append(
                    phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                )
    return numbers


def _hidden_enough(phone: str, masked: str) -> None:
    digits = "".join(ch for ch in phone if ch.isdigit())
    assert set(masked) <= set("+ 0123456789" + MASK)
    country_code = re.match(r"\+?(\d*)", masked).group(1)  # shown whole, when known
    national = digits[len(country_code) :]
    assert masked.count(MASK) >= min(len(national), MIN_HIDDEN_DIGITS)
    # No run of the real digits longer than a country code plus an area code survives.
    assert digits not in masked.replace(" ", "")
    assert digits[-7:] not in masked.replace(" ", "")


@pytest.mark.parametrize("phone", _regions_example_numbers())
def test_every_countrys_example_numbers_keep_enough_hidden(phone):
    masked = mask_phone(phone)
    _hidden_enough(phone, masked)
    number = phonenumbers.parse(phone)
    assert masked.startswith(f"+{number.country_code} ")


@given(st.text(alphabet="+0123456789 -()", max_size=24))
def test_any_text_never_comes_back_with_its_digits(phone):
    masked = mask_phone(phone)
    if not any(ch.isdigit() for ch in phone):
        assert masked == phone
    else:
        _hidden_enough(phone, masked)


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("call me on (415) 555-0123", "call me on (•••) •••-••••"),
        ("my number is +1 415 555 0123!", "my number is +• ••• ••• ••••!"),
        ("card 4111 1111 1111 1111", "card •••• •••• •••• ••••"),
        ("order 12345, twice", "order •••••, twice"),
        ("415.555.0123 or 415-555-0124", "•••.•••.•••• or •••-•••-••••"),
        ("I waited 45 minutes, 3 times", "I waited 45 minutes, 3 times"),
        ("nothing to hide", "nothing to hide"),
        ("", ""),
        (None, None),
    ],
)
def test_digit_runs_in_comments_are_hidden(text, hidden):
    assert hide_digits(text) == hidden


ENTRY = Detractor(
    request_id=7,
    phone="+14155550123",
    agent="alice",
    queue="billing",
    team="north",
    call_ended_at=datetime(2026, 11, 2, 15, 0, tzinfo=UTC),
    survey="post-call",
    answers={"nps": 2, "csat": 1},
    comment="call me back on 415 555 0123, the wait was long",
    recording_url="https://api.twilio.test/RE1.mp3",
)


def test_a_masked_reader_gets_no_number_recording_or_digits():
    masked = shown_to(ENTRY, Contact.MASKED)
    assert masked.phone == "+1 415 ••• ••23"
    assert masked.recording_url is None
    assert masked.comment == "call me back on ••• ••• ••••, the wait was long"
    # Everything else is the entry as stored, and the stored entry is untouched.
    assert (masked.request_id, masked.agent, masked.answers) == (7, "alice", ENTRY.answers)
    assert ENTRY.phone == "+14155550123"
    body = str(masked.to_json())
    assert "5550123" not in body and "twilio" not in body


def test_a_full_reader_gets_the_entry_as_stored():
    assert shown_to(ENTRY, Contact.FULL) == ENTRY


@pytest.mark.parametrize(
    ("role", "contact"),
    [
        ("admin", Contact.FULL),
        ("supervisor", Contact.FULL),
        ("analyst", Contact.MASKED),
        ("viewer", Contact.MASKED),  # a role this code does not know sees least
        ("", Contact.MASKED),
    ],
)
def test_what_each_role_sees(role, contact):
    assert contact_for_role(role) is contact


def test_every_role_is_decided():
    assert {contact_for_role(role) for role in ROLES} == set(Contact)
