"""Canonical forms of e-mail addresses and phone numbers: the keys identities and sign-ins are matched on."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from hilo.i18n import N_


class InvalidIdentity(ValueError):
    """An identity value that cannot be normalised; `reason` is a catalog msgid."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# Every message names its sender (and often an e-mail or phone beside): the same few
# thousand values again and again, each costing a parse. Invalid values raise and are
# not kept.
SEEN_VALUES = 8192


@lru_cache(maxsize=SEEN_VALUES)
def normalize_phone(value: str, default_region: str) -> str:
    """Return the E.164 form of `value` ("+34600111222"); WhatsApp's wa_id has no plus."""
    raw = value.strip()
    if raw.lower().startswith("whatsapp:"):
        raw = raw[len("whatsapp:") :]
    digits_only = raw.replace(" ", "").replace("-", "")
    # No country code starts with 0, so a leading 0 is a national trunk prefix
    # ("011 15 2345-6789" in Argentina, "07700 900123" in the UK), not a missing "+".
    if digits_only.isdigit() and len(digits_only) > 10 and not digits_only.startswith("0"):
        # An international number without its "+" (WhatsApp wa_id, some CSV exports).
        raw = "+" + digits_only
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity("phone_invalid", N_("This is not a valid phone number.")) from exc
    parsed = _current_brazilian_form(_current_mexican_form(parsed))
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidIdentity("phone_invalid", N_("This is not a valid phone number."))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _current_mexican_form(parsed: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    """Drop the "1" that Mexican mobile numbers carried after +52 until 2019.

    WhatsApp still names Mexican mobiles that way (wa_id 5215512345678) while SMS and the
    numbering plan use +525512345678; without this the two never meet. Mexican numbers
    have ten digits and no area code starts with 1, so an eleventh leading 1 is always
    the old prefix.

    Argentina needs no such step: WhatsApp's 549... and E.164's +54 9... are the same
    digits, and the national "15" mobile prefix is turned into the 9 by the parser."""
    national = str(parsed.national_number)
    if parsed.country_code != 52 or len(national) != 11 or not national.startswith("1"):
        return parsed
    return phonenumbers.PhoneNumber(country_code=52, national_number=int(national[1:]))


# Brazilian subscriber numbers starting with these digits are mobiles; 2-5 are landlines.
BRAZILIAN_MOBILE_STARTS = frozenset("6789")


def _current_brazilian_form(parsed: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    """Add the ninth digit Brazilian mobile numbers gained between 2012 and 2016.

    WhatsApp still names many Brazilian mobiles without it (wa_id 551187650000 for
    +55 11 98765-0000) while SMS, calls and the numbering plan use the nine digits; without
    this the two never meet. A Brazilian number is a two-digit area code and eight digits
    (landlines, starting 2 to 5) or nine (mobiles, "9" and eight digits): eight digits
    starting 6 to 9 are a mobile in the old form. Replies on WhatsApp go to the wa_id as
    the customer wrote from it (see `hilo.channels.whatsapp`)."""
    national = str(parsed.national_number)
    if parsed.country_code != 55 or len(national) != 10 or national[2] not in BRAZILIAN_MOBILE_STARTS:
        return parsed
    return phonenumbers.PhoneNumber(country_code=55, national_number=int(national[:2] + "9" + national[2:]))


@lru_cache(maxsize=SEEN_VALUES)
def normalize_email(value: str) -> str:
    """Return the lower-cased address, checking syntax only (no DNS look-ups)."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidIdentity("email_invalid", N_("This is not a valid e-mail address.")) from exc
    return result.normalized.lower()
