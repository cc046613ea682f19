"""How much of a customer a reader may see, and phone numbers and digits hidden.

One place for every mask: the detractor list, its CSV and the report API (a reader's
`Contact`, from a dashboard role or an API key's scope), the failed jobs on the Queues
page, and the lines of the logs. It does not decide who gets which `Contact`: core.users
and core.apikeys do.
"""

from __future__ import annotations

import re
from enum import StrEnum

import phonenumbers

MASK = "•"
# A masked number shows its country code, its area code and its last two digits only
# while at least this many digits stay hidden: "+1 415 ••• ••23" hides five, and a
# short number (a Berlin line, a short code) shows less rather than nearly all of itself.
MIN_HIDDEN_DIGITS = 5
SHOWN_LAST_DIGITS = 2
# Four or more digits in a row, spaces and punctuation between them allowed: a phone,
# card or account number read out in a comment. "waited 45 minutes" stays readable.
DIGIT_RUN = re.compile(r"\d(?:[\s().,/-]{0,2}\d){3,}")
# In logs: a run that looks like a phone number, whatever else the line says.
_PHONE = re.compile(r"\+?\d[\d ().-]{7,}\d")


class Contact(StrEnum):
    """How much of the customer a reader of the detractor list may see."""

    # The number, the recording and the transcript: what calling a customer back needs.
    FULL = "full"
    # Scores without the person: country and area code plus the last two digits of the
    # number, no recording (a voice identifies), digit runs in transcripts hidden.
    MASKED = "masked"


def mask_phone(phone: str | None) -> str | None:
    """A phone number with most digits hidden: `+14155550123` -> `+1 415 ••• ••23`.

    The country calling code is always shown; the area code (where the country has
    geographic ones) and the last two digits only while `MIN_HIDDEN_DIGITS` stay hidden.
    Anything that does not parse as a possible number keeps a leading `+` and at most its
    last two digits. Text without a digit (the retention purge's marker) is no number
    and comes back as it is.
    """
    if phone is None:
        return None
    if not any(ch.isdigit() for ch in phone):
        return phone
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        digits = "".join(ch for ch in phone if ch.isdigit())
        shown = SHOWN_LAST_DIGITS if len(digits) - SHOWN_LAST_DIGITS >= MIN_HIDDEN_DIGITS else 0
        masked = MASK * (len(digits) - shown) + digits[len(digits) - shown :]
        return ("+" if phone.lstrip().startswith("+") else "") + masked
    national = phonenumbers.national_significant_number(number)
    last = SHOWN_LAST_DIGITS if len(national) - SHOWN_LAST_DIGITS >= MIN_HIDDEN_DIGITS else 0
    area = phonenumbers.length_of_geographical_area_code(number)
    if len(national) - last - area < MIN_HIDDEN_DIGITS:
        area = 0
    shown = [i < area or i >= len(national) - last for i in range(len(national))]
    # The international format groups the digits as the country writes them; its
    # separators (spaces, hyphens) all become spaces.
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    prefix = f"+{number.country_code}"
    out, index = [prefix], 0
    for ch in formatted.removeprefix(prefix):
        if ch.isdigit() and index < len(national):
            out.append(ch if shown[index] else MASK)
            index += 1
        elif out[-1] != " ":
            out.append(" ")
    return "".join(out).strip()


def hide_digits(text: str | None) -> str | None:
    """Free text with every run of four or more digits hidden (`call me on •••-••••`).

    What a customer says in a recorded comment is for reading, but a number they read
    out (their phone, an account, a card) is not. Numbers spoken as words ("four one
    five") are not caught; see docs/dashboard.md.
    """
    if text is None:
        return None
    return DIGIT_RUN.sub(lambda run: re.sub(r"\d", MASK, run.group()), text)


def mask_numbers(text: str) -> str:
    """Every run that looks like a phone number, down to its last two digits."""
    return _PHONE.sub(lambda m: "•" * (len(m.group()) - 2) + m.group()[-2:], text)
