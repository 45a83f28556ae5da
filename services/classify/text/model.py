"""The shipped text model: logistic-regression heads over hashed features, numpy only.

``probabilities(texts, languages)`` is the one batch entry point: raw logits through
each language's calibration (``calibration.py``). A cascade refines its output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .calibration import Calibration, calibrate
from .features import featurise, language_bucket

MODEL_DIR = Path(__file__).resolve().parent.parent / "models"
HEADS = ("upset", "anger")
_WORD = re.compile(r"\w{3,}")

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TextModel:
    version: str
    bits: int
    conjoin: bool  # features also conjoined with the language (see features.py)
    weights: npt.NDArray[np.float32]  # (2**bits, heads)
    bias: npt.NDArray[np.float64]
    thresholds: dict[str, dict[str, float]]
    # head -> language (or "default") -> calibration of that head's logits
    calibration: dict[str, dict[str, Calibration]] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()  # languages it was trained on

    @classmethod
    def load(cls, directory: Path = MODEL_DIR) -> TextModel:
        meta = json.loads((directory / "text_model.json").read_text())
        with np.load(directory / "text_model.npz") as data:
            weights = data["weights"].astype(np.float32)
        return cls(
            version=meta["version"],
            bits=int(meta["bits"]),
            conjoin=bool(meta.get("conjoin_language", False)),
            weights=weights,
            bias=np.asarray(meta["bias"], dtype=np.float64),
            thresholds=meta["thresholds"],
            calibration={
                head: {lang: Calibration.from_json(c) for lang, c in table.items()}
                for head, table in (meta.get("calibration") or {}).items()
            },
            languages=frozenset(meta.get("languages") or ()),
        )

    def knows(self, language: str) -> bool:
        """Whether the model was trained on, or has a threshold for, ``language``."""
        return language in self.languages or language in self.thresholds.get("upset", {})

    def logits(self, texts: Sequence[str], languages: Sequence[str]) -> FloatArray:
        """(n, heads) logits for a batch."""
        if not texts:
            return np.zeros((0, len(HEADS)))
        batch = featurise(texts, languages, self.bits, self.conjoin)
        gathered = self.weights[batch.buckets]
        scale = batch.scale[batch.rows]
        out = np.empty((batch.size, len(HEADS)))
        for column in range(len(HEADS)):
            out[:, column] = np.bincount(
                batch.rows, weights=gathered[:, column] * scale, minlength=batch.size
            )
        return out + self.bias

    def probabilities(self, texts: Sequence[str], languages: Sequence[str]) -> FloatArray:
        """(n, heads) calibrated probabilities for a batch."""
        return self.calibrated(self.logits(texts, languages), languages)

    def calibrated(self, logits: FloatArray, languages: Sequence[str]) -> FloatArray:
        out = np.empty_like(logits)
        langs = np.asarray(list(languages), dtype=str)
        for column, head in enumerate(HEADS):
            out[:, column] = calibrate(self.calibration.get(head, {}), logits[:, column], langs)
        return out

    def threshold(self, head: str, language: str) -> float:
        table = self.thresholds[head]
        return table.get(language, table["default"])

    def thresholds_for(self, head: str, languages: Sequence[str]) -> FloatArray:
        return np.array([self.threshold(head, lang) for lang in languages])

    def top_terms(self, text: str, language: str, head: str, k: int = 3) -> list[str]:
        """The words of ``text`` that push ``head`` up most: the model's explanation."""
        words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text[:2000])))[:200]
        if not words:
            return []
        column = HEADS.index(head)
        batch = featurise(words, [language] * len(words), self.bits, self.conjoin)
        pushes = np.bincount(
            batch.rows, weights=self.weights[batch.buckets, column], minlength=batch.size
        )
        pushes -= self.weights[language_bucket(language, self.bits), column]  # not a word's
        order = np.argsort(-pushes)[:k]
        return [words[i] for i in order if pushes[i] > 0.5]


@lru_cache(maxsize=1)
def default_model() -> TextModel:
    return TextModel.load()
