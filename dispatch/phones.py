"""Phone numbers: E.164 normalisation (default region RU) and masking for logs."""

from __future__ import annotations

import phonenumbers

from dispatch.errors import DispatchError

DEFAULT_REGION = "RU"


class InvalidPhone(DispatchError, ValueError):
    """The text is not a phone number we can send to."""


def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """`"+7 916 123-45-67"` or `"8 (916) 123-45-67"` → `"+79161234567"`.

    Raises `InvalidPhone` when the text cannot be parsed or cannot be a number of its region.
    """
    text = raw.strip()
    if not text:
        raise InvalidPhone("empty phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(f"not a possible phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(phone: str | None) -> str:
    """`+79161234567` → `+7916***4567`: enough to tell numbers apart, not enough to call."""
    if not phone:
        return "-"
    if len(phone) <= 8:
        return phone[:2] + "***"
    return f"{phone[:5]}***{phone[-4:]}"
