"""Phone numbers: parse what people type into E.164, tell landlines apart, mask for listings."""
from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

from phonetree.errors import PhonetreeError

DEFAULT_REGION = "GB"

_LANDLINE_TYPES = {PhoneNumberType.FIXED_LINE}
_SMS_CAPABLE_TYPES = {
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.PERSONAL_NUMBER,
}


def parse_phone(text: str, region: str = DEFAULT_REGION) -> str:
    """Return the number in E.164, or raise PhonetreeError saying why it is not a real number."""
    cleaned = (text or "").strip()
    if not cleaned:
        raise PhonetreeError("a phone number is needed, e.g. --phone '07911 100001'.")
    try:
        number = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException:
        raise PhonetreeError(f"{cleaned!r} is not a phone number; write it like 07911 100001 or +447911100001.")
    if not phonenumbers.is_valid_number(number):
        raise PhonetreeError(f"{cleaned!r} is not a real phone number; check the digits (e.g. 07911 100001).")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_landline(e164: str) -> bool:
    """True when the number is a fixed line, which cannot receive SMS."""
    return phonenumbers.number_type(phonenumbers.parse(e164)) in _LANDLINE_TYPES


def display(e164: str) -> str:
    """The number as a person in the same country would dial it (07911 100001)."""
    number = phonenumbers.parse(e164)
    if number.country_code == phonenumbers.country_code_for_region(DEFAULT_REGION):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask(e164: str | None) -> str:
    """Enough to tell numbers apart in a listing or a log, not enough to ring: the number as
    dialled with its first group (the mobile or area prefix) and last three digits kept,
    07911 ***001 and 01522 ***001, so a mobile and a landline ending alike still differ."""
    if not e164:
        return "-"
    try:
        shown = display(e164)
    except phonenumbers.NumberParseException:
        shown = e164
    first, space, rest = shown.partition(" ")
    if not space:  # no grouping to keep: the first three characters stand in for the prefix
        first, rest = shown[:3], shown[3:]
    digits = sum(c.isdigit() for c in rest)
    keep = min(3, max(digits - 3, 0))  # a short number keeps fewer: never most of it
    out, seen = [], 0
    for char in rest:
        if char.isdigit():
            seen += 1
            out.append(char if seen > digits - keep else "*")
        else:
            out.append(char)
    return first + space + "".join(out)


def mask_numbers_in(text: str | None) -> str | None:
    """Every phone number written in `text` (a notice asking someone to ring 07911 100001, in
    any of the forms people write) replaced by its `mask`."""
    if not text or not any(c.isdigit() for c in text):
        return text
    out, end = [], 0
    for match in phonenumbers.PhoneNumberMatcher(text, DEFAULT_REGION):
        out.append(text[end:match.start])
        out.append(mask(phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)))
        end = match.end
    out.append(text[end:])
    return "".join(out)
