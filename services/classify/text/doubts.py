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

import numpy as np
import numpy.typing as npt

from .features import MAX_CHARS

LONG_TEXT = 5 * MAX_CHARS  # beyond this the model saw a small part of the text
MAX_CUE_CHARS = 50_000  # the lexicons read this much (a 100 KB paste stays fast)
SAMPLE = 2_000  # characters looked at to tell the script
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SCRIPT_NAMES = ("Latin", "Arabic", "Cyrillic", "Greek", "Hebrew", "CJK", "Devanagari", "Thai")
_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "Latin": ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1E00, 0x1EFF)),
    "Arabic": ((0x600, 0x6FF), (0x750, 0x77F), (0x8A0, 0x8FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    "Cyrillic": ((0x400, 0x52F),),
    "Greek": ((0x370, 0x3FF),),
    "Hebrew": ((0x590, 0x5FF),),
    "CJK": ((0x3040, 0x30FF), (0x3400, 0x9FFF), (0xAC00, 0xD7AF)),
    "Devanagari": ((0x900, 0x97F),),
    "Thai": ((0xE00, 0xE7F),),
}
OTHER = len(SCRIPT_NAMES) + 1  # a letter of no script above; 0 = not a letter


def _script_table() -> npt.NDArray[np.uint8]:
    # The Basic Multilingual Plane; ``script_counts`` handles the planes beyond it.
    table = np.zeros(0x10000, dtype=np.uint8)
    letters = np.array([chr(c).isalpha() for c in range(0x10000)])
    table[letters] = OTHER
    for index, name in enumerate(SCRIPT_NAMES, 1):
        for low, high in _RANGES[name]:
            span = slice(low, high + 1)
            table[span] = np.where(letters[span], index, 0)
    return table


_TABLE = _script_table()
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
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    return _CONTROL.sub(" ", text) if _CONTROL.search(text) else text


def script_counts(texts: Sequence[str]) -> npt.NDArray[np.int64]:
    """(n, scripts + 2) letters per script in the first ``SAMPLE`` characters of each
    text, for a whole batch in numpy (column 0: non-letters, last: other letters)."""
    n = len(texts)
    width = OTHER + 1
    if not n:
        return np.zeros((0, width), dtype=np.int64)
    joined = "".join(t[:SAMPLE] for t in texts)
    cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    # Beyond the BMP: CJK extensions are letters; emoji and the rest are not.
    beyond = np.where((cp >= 0x20000) & (cp < 0x40000), SCRIPT_NAMES.index("CJK") + 1, 0)
    kind = np.where(cp < 0x10000, _TABLE[np.minimum(cp, 0xFFFF)], beyond).astype(np.int64)
    lengths = np.array([min(len(t), SAMPLE) for t in texts])
    rows = np.repeat(np.arange(n), lengths)
    counts = np.bincount(rows * width + kind, minlength=n * width)
    return counts.reshape(n, width)


def scripts(text: str) -> dict[str, int]:
    """Letters per script in the first ``SAMPLE`` characters."""
    counts = script_counts([text])[0]
    names = ("", *SCRIPT_NAMES, "other")
    return {names[i]: int(counts[i]) for i in range(1, len(names)) if counts[i]}


def doubts(
    text: str, language: str, known_language: bool, counts: npt.NDArray[np.int64] | None = None
) -> tuple[str, ...]:
    """Reasons (short sentences) why the text part is unsure about ``text`` (``counts``:
    its row of ``script_counts``, computed here when not given)."""
    reasons: list[str] = []
    row = script_counts([text])[0] if counts is None else counts
    names = ("", *SCRIPT_NAMES, "other")
    found = {names[i]: int(row[i]) for i in range(1, len(names)) if row[i]}
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
    """``doubts`` for a batch (the scripts counted once for all texts)."""
    counts = script_counts(texts)
    return [
        doubts(t, lang, k, counts[i])
        for i, (t, lang, k) in enumerate(zip(texts, languages, known, strict=True))
    ]
