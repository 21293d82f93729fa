"""Phone normalization to E.164 with real validity (libphonenumber), and log masking."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.channels.phone import E164_RE, PhoneCheck, mask_phone, normalize_phone


def test_e164_regex_is_the_spec_one() -> None:
    assert E164_RE == r"^\+[1-9]\d{1,14}$"
    rx = re.compile(E164_RE)
    assert rx.match("+14155552671")
    assert rx.match("+12")  # shape only: 2 to 15 digits
    assert rx.match("+123456789012345")
    assert not rx.match("+1234567890123456")  # 16 digits
    assert not rx.match("+04155552671")
    assert not rx.match("14155552671")
    assert not rx.match("+1 415 555 2671")


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+14155552671", "+14155552671"),  # US
        ("+442071838750", "+442071838750"),  # UK landline
        ("+447911123456", "+447911123456"),  # UK mobile
        ("+919876543210", "+919876543210"),  # India mobile
        ("+4915123456789", "+4915123456789"),  # Germany mobile
        ("+4930901820", "+4930901820"),  # Berlin landline
    ],
)
def test_valid_e164_numbers(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == PhoneCheck(ok=True, e164=e164, reason=None)


def test_example_journey_numbers_pass() -> None:
    # phonenumbers does NOT reject the fictional 555-01xx range: the example journeys
    # use +141555501xx numbers and rely on that.
    for raw in ("+14155550123", "+14155550100", "+14155550199", "+12125550123"):
        assert normalize_phone(raw) == PhoneCheck(ok=True, e164=raw, reason=None)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+1 (415) 555-0123", None, "+14155550123"),
        ("+1-415-555-2671", None, "+14155552671"),
        ("  +44 20 7183 8750 ", None, "+442071838750"),
        ("+1.415.555.2671", None, "+14155552671"),
        ("415-555-2671", "US", "+14155552671"),
        ("(415) 555 2671", "us", "+14155552671"),  # region case does not matter
        ("020 7183 8750", "GB", "+442071838750"),
        ("07911 123456", "GB", "+447911123456"),
        ("098765 43210", "IN", "+919876543210"),
        ("0151 23456789", "DE", "+4915123456789"),
        ("+44 20 7183 8750", "US", "+442071838750"),  # "+" wins over the region
        ("00 44 20 7183 8750", "DE", "+442071838750"),  # international prefix
        ("+١٤١٥٥٥٥٢٦٧١", None, "+14155552671"),  # Arabic-Indic digits
    ],
)
def test_formatted_and_national_numbers_normalize(raw: str, region: str | None, e164: str) -> None:
    assert normalize_phone(raw, region) == PhoneCheck(ok=True, e164=e164, reason=None)


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n"])
def test_missing(raw: str | None) -> None:
    assert normalize_phone(raw) == PhoneCheck(ok=False, e164=None, reason="missing_phone")


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+1415555", None),  # too short
        ("+1", None),
        ("+12", None),  # E.164-shaped, not a number
        ("+1415555012", None),  # one digit short
        ("+141555501234", None),  # one digit long
        ("+04155552671", None),  # country code cannot start with 0
        ("+0", None),
        ("+15555550123", None),  # 555 is not a US area code
        ("+11234567890", None),  # area codes do not start with 1
        ("+1234567890123456", None),  # 16 digits
        ("4155552671", None),  # national without a region
        ("4155552671", "XX"),  # unknown region
        ("+1 800 FLOWERS", None),  # letters (vanity numbers are not addresses)
        ("+1415555abcd", None),
        ("+1 415 555 2671 ext. 5", None),  # extension
        ("+1 415 555 2671;ext=5", None),
        ("++14155552671", None),
        ("1+4155552671", None),
        ("+14155552671\n+14155552672", None),
        ("tel:+14155552671", None),
        ("not a phone", None),
    ],
)
def test_invalid(raw: str, region: str | None) -> None:
    assert normalize_phone(raw, region) == PhoneCheck(ok=False, e164=None, reason="invalid_phone")


@given(st.text(max_size=30))
def test_prop_never_raises_and_ok_means_e164(raw: str) -> None:
    check = normalize_phone(raw, "US")
    assert check.ok == (check.e164 is not None) == (check.reason is None)
    if check.ok:
        assert check.e164 is not None
        assert re.fullmatch(E164_RE, check.e164, re.ASCII)
        assert normalize_phone(check.e164) == check  # idempotent


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+14155550123", "+1415*****23"),
        ("+447911123456", "+44791*****56"),
        ("+919876543210", "+91987*****10"),
        ("+4915123456789", "+49151******89"),
        ("+33612345678", "+3361*****78"),  # 9 national digits: at least half hidden
        ("+6834002", "+683**02"),  # Niue, 4 national digits
        ("+12", "+1*"),
    ],
)
def test_mask_phone(e164: str, masked: str) -> None:
    assert mask_phone(e164) == masked


@pytest.mark.parametrize("raw", ["", "4155550123", "+1 415 555 0123", "+14155550123\n", "x"])
def test_mask_phone_never_echoes_non_e164(raw: str) -> None:
    assert mask_phone(raw) == "***"


@given(st.from_regex(r"\+[1-9][0-9]{1,14}", fullmatch=True))
def test_prop_mask_hides_at_least_half(e164: str) -> None:
    masked = mask_phone(e164)
    assert len(masked) == len(e164)
    assert masked.startswith("+")
    hidden = masked.count("*")
    assert hidden >= 1
    assert hidden >= (len(e164) - 4) // 2  # at least half of the widest national part
