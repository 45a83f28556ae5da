"""Masking of personal data in text that leaves the case: logs, lessons, digests."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
# Card-like: 13-19 digits, optionally grouped by spaces or dashes.
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
# Phone-like: an optional +, then 7-15 digits with common separators.
_PHONE = re.compile(r"(?<![\w])\+?\d(?:[\d\s().-]{5,18})\d(?![\w])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b")


def mask_pii(text: str) -> str:
    """Replace emails, card numbers, IBANs and phone numbers with placeholders."""
    if not text:
        return text
    text = _EMAIL.sub("[email]", text)
    text = _IBAN.sub("[iban]", text)
    text = _CARD.sub("[card]", text)
    return _PHONE.sub(_phone_or_keep, text)


def _phone_or_keep(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return "[phone]" if digits >= 7 else match.group(0)
