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
    """Enough to tell numbers apart in a listing or a log, not enough to ring: +44******0001."""
    if not e164:
        return "-"
    keep = 4
    return e164[:3] + "*" * max(len(e164) - 3 - keep, 0) + e164[-keep:]
