"""Why the text part may be unreliable for one text: reasons for a "low confidence" note.

Bad input still gets a score (the model and lexicons run on whatever text there is);
these reasons travel with it so the assignee knows not to trust the text part: no
letters (empty, emoji or punctuation only), undecodable characters (U+FFFD from a
channel's invalid bytes, lone surrogates), mixed scripts, a language tag that does not
match the script or that the model has no calibration for, and very long text (the
model reads the first ``features.MAX_CHARS`` characters).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .features import MAX_CHARS

LONG_TEXT = 5 * MAX_CHARS  # beyond this the model saw a small part of the text
MAX_CUE_CHARS = 50_000  # the lexicons read this much (a 100 KB paste stays fast)
SAMPLE = 2_000  # characters looked at to tell the script
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LETTER = re.compile(r"[^\W\d_]")
_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Latin", re.compile("[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")),
    ("Arabic", re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")),
    ("Cyrillic", re.compile("[\u0400-\u052f]")),
    ("Greek", re.compile("[\u0370-\u03ff]")),
    ("Hebrew", re.compile("[\u0590-\u05ff]")),
    ("CJK", re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")),
    ("Devanagari", re.compile("[\u0900-\u097f]")),
    ("Thai", re.compile("[\u0e00-\u0e7f]")),
)
# The script each seed language is written in (route and lexicons know these languages).
EXPECTED_SCRIPT = {
    "fa": "Arabic",
    **{lang: "Latin" for lang in ("en", "fi", "et", "id", "tr", "de", "fr", "es")},
}
MAIN_SHARE = 0.7  # below this share of the letters for the main script, scripts are mixed
MINOR_SHARE = 0.15  # scripts named as mixed in


def sanitise(text: str) -> str:
    """Text every later step can read: lone surrogates become U+FFFD, control
    characters (NUL included: the featuriser's separator) become spaces."""
    if text.isascii():
        return _CONTROL.sub(" ", text) if _CONTROL.search(text) else text
    text = _SURROGATE.sub("\ufffd", text)
    return _CONTROL.sub(" ", text) if _CONTROL.search(text) else text


def scripts(text: str) -> dict[str, int]:
    """Letters per script in the first ``SAMPLE`` characters."""
    sample = text[:SAMPLE]
    if sample.isascii():
        count = sum(1 for c in sample if c.isalpha())
        return {"Latin": count} if count else {}
    found = {name: len(p.findall(sample)) for name, p in _SCRIPTS}
    letters = len(_LETTER.findall(sample))
    other = letters - sum(found.values())
    if other > 0:
        found["other"] = other
    return {k: v for k, v in found.items() if v}


def doubts(text: str, language: str, known_language: bool) -> tuple[str, ...]:
    """Reasons (short sentences) why the text part is unsure about ``text``."""
    reasons: list[str] = []
    found = scripts(text)
    letters = sum(found.values())
    if not letters:
        reasons.append("no words to read (empty, emoji or punctuation only)")
    if "\ufffd" in text:
        reasons.append(f"undecodable characters in the text ({text.count(chr(0xFFFD))})")
    if letters:
        ranked = sorted(found.items(), key=lambda kv: -kv[1])
        main = ranked[0][0]
        second = [name for name, n in ranked[1:] if n >= MINOR_SHARE * letters]
        if second and ranked[0][1] < MAIN_SHARE * letters:
            reasons.append(f"mixed scripts ({', '.join([main, *second])})")
        expected = EXPECTED_SCRIPT.get(language)
        if expected and main != expected and letters >= 3:
            reasons.append(f"language tag {language!r} but the text is in {main} script")
    if not known_language:
        reasons.append(f"the model has no data for language {language!r}: pooled threshold")
    if len(text) > LONG_TEXT:
        reasons.append(f"very long text: the model read {MAX_CHARS:,} of {len(text):,} characters")
    return tuple(reasons)


def all_doubts(
    texts: Sequence[str], languages: Sequence[str], known: Sequence[bool]
) -> list[tuple[str, ...]]:
    return [doubts(t, lang, k) for t, lang, k in zip(texts, languages, known, strict=True)]
