"""How many SMS a text costs (GSM 03.38 / 3GPP TS 23.038). Pure.

A text written only with the GSM 7-bit alphabet fits 160 characters in one SMS, 153 per part
once it must be split (the user-data header takes 7). Characters of the extension table
(€ [ ] { } ^ ~ \\ | and form feed) take two septets. Any other character (accented capitals
other than É, emoji, curly quotes…) switches the whole text to UCS-2: 70 UTF-16 code units in one
SMS, 67 per part. Twilio refuses bodies over 1600 characters (twilio_sms.SMS_BODY_LIMIT).
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True, slots=True)
class SmsCount:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # the limit that applies to this text (160/153 or 70/67)

    @property
    def remaining(self) -> int:
        """Room left in the last part before another one starts."""
        return self.segments * self.per_segment - self.units if self.segments else self.per_segment


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text)


def count_sms(text: str) -> SmsCount:
    if is_gsm7(text):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        single, part, encoding = GSM7_SINGLE, GSM7_PART, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = UCS2_SINGLE, UCS2_PART, "UCS-2"
    if units == 0:
        return SmsCount(encoding, 0, 0, single)
    if units <= single:
        return SmsCount(encoding, units, 1, single)
    return SmsCount(encoding, units, -(-units // part), part)
