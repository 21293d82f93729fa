"""Phone numbers: normalize to E.164, check real validity, mask for logs.

Shape alone (``^\\+[1-9]\\d{1,14}$``) lets through numbers no carrier can route, and a
send to one still costs money and hurts sender reputation, so validity is checked with
libphonenumber (the ``phonenumbers`` port); see docs/channels.md.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final, Literal

import phonenumbers

E164_RE: Final = r"^\+[1-9]\d{1,14}$"
_E164: Final = re.compile(E164_RE, re.ASCII)
# Digits with the usual separators and one leading "+". Anything else is refused before
# parsing: phonenumbers would read letters as a vanity number ("1-800-FLOWERS") and text
# such as "ext. 12" as an extension, and neither is an address an SMS can go to.
_DIALABLE: Final = re.compile(r"\+?[\d\s().\-]+")

PhoneReason = Literal["missing_phone", "invalid_phone"]

# Calling codes are prefix-free, so the first of 1, 2 or 3 leading digits found here is it.
_COUNTRY_CODES: Final = frozenset(str(cc) for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@dataclass(frozen=True, slots=True)
class PhoneCheck:
    """``ok`` with ``e164`` set, or not ``ok`` with a ``reason``."""

    ok: bool
    e164: str | None
    reason: PhoneReason | None


_MISSING: Final = PhoneCheck(ok=False, e164=None, reason="missing_phone")
_INVALID: Final = PhoneCheck(ok=False, e164=None, reason="invalid_phone")


@functools.lru_cache(maxsize=100_000)  # libphonenumber is slow, and users get many messages
def normalize_phone(raw: str | None, default_region: str | None = None) -> PhoneCheck:
    """Parse ``raw`` (E.164, or national with ``default_region`` like ``"US"``) to E.164.

    Spaces, dashes, dots and parentheses are accepted ("+1 (415) 555-0123"). Reasons:
    ``missing_phone`` for None or blank, ``invalid_phone`` for anything that does not parse,
    is not a valid number for its region, or does not come out E.164-shaped.
    """
    if raw is None:
        return _MISSING
    text = raw.strip()
    if not text:
        return _MISSING
    if not _DIALABLE.fullmatch(text):
        return _INVALID
    region = default_region.upper() if default_region else None  # phonenumbers wants "US"
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return _INVALID
    if not phonenumbers.is_valid_number(number):
        return _INVALID
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not _E164.fullmatch(e164):
        return _INVALID
    return PhoneCheck(ok=True, e164=e164, reason=None)


def mask_phone(e164: str) -> str:
    """``+14155550123`` -> ``+1415*****23``: country code, 3 digits, last 2 for logs.

    Shorter national numbers show fewer digits so at least half of them stay hidden.
    Text that is not E.164-shaped is not echoed at all: it may be a number in another
    format, and logs must not carry it.
    """
    if not _E164.fullmatch(e164):
        return "***"
    digits = e164[1:]
    # At least one digit stays national, so something is always hidden.
    cc_len = next((n for n in (1, 2, 3) if n < len(digits) and digits[:n] in _COUNTRY_CODES), 1)
    cc, national = digits[:cc_len], digits[cc_len:]
    n = len(national)
    hidden = max(n - 5, (n + 1) // 2)
    tail = min(2, n - hidden)
    head = n - hidden - tail
    return f"+{cc}{national[:head]}{'*' * hidden}{national[n - tail :]}"
