"""How many segments a text travels as: what carriers and Twilio's per-number rate
limits count (a US long code sends one segment a second), and what is billed.

A body of only GSM-7 characters (the GSM 03.38 basic set, the extension table's
characters counting two) takes 160 characters in one segment, 153 per segment once
split; any other character makes the whole body UCS-2: 70 UTF-16 code units in one
segment, 67 per segment (twilio.com/docs/glossary/what-sms-character-limit).
"""

from __future__ import annotations

import math

GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def segments(body: str) -> int:
    """The number of segments `body` is sent as (at least 1)."""
    if all(c in GSM7 or c in GSM7_EXTENDED for c in body):
        septets = sum(2 if c in GSM7_EXTENDED else 1 for c in body)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)
