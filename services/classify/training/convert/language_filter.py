"""Drop rows a set's publisher mislabelled by language (e.g. Chinese reviews in an English set).

Conservative on purpose. A row goes when most of its letters are not in its language's
script (Chinese in an English set), or when py3langid (full model, normalised
probabilities) is at least ``confidence`` sure it is some *other* language. Short or
mixed texts it cannot place stay. Converters print how many rows went.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from services.classify.training.convert.common import Row

SCRIPTS = {"fa": "ARABIC"}  # every other language here is written in Latin letters


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def script_share(text: str, language: str) -> float:
    """Share of the letters that belong to the language's script (1.0 with no letters)."""
    script = SCRIPTS.get(language, "LATIN")
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 1.0
    return sum(unicodedata.name(ch, "").startswith(script) for ch in letters) / len(letters)


def is_other_language(text: str, language: str, confidence: float = 0.9) -> bool:
    if script_share(text, language) < 0.5:
        return True
    detected, probability = _identifier().classify(text)
    return detected != language and float(probability) >= confidence


def keep_language(rows: Iterable[Row], set_id: str, confidence: float = 0.9) -> Iterator[Row]:
    """The rows in their declared language; prints the count of the others it drops."""
    dropped = 0
    for row in rows:
        if is_other_language(row["text"], row["language"], confidence):
            dropped += 1
            continue
        yield row
    print(f"{set_id}: dropped {dropped} rows confidently in another language")
