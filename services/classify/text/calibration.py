"""Per-language probability calibration of the text model's logits (numpy only).

Fitted on validation splits by ``training/train.py`` and stored in ``text_model.json``:
``{"kind": "platt", "a", "b"}`` (sigmoid(a * logit + b), a > 0) or ``{"kind":
"isotonic", "x", "y"}`` (a non-decreasing step function of the logit, interpolated).
Both are monotonic in the logit, so the urgency score stays monotonic in the model's
evidence. A language without its own entry uses the pooled ``default`` one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
EPSILON = 1e-3  # never certain: a calibrated 0 or 1 would hide the next piece of evidence


def sigmoid(z: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


@dataclass(frozen=True)
class Calibration:
    kind: str = "identity"
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def apply(self, logits: FloatArray) -> FloatArray:
        if self.kind == "isotonic" and self.x:
            p = np.interp(logits, np.asarray(self.x), np.asarray(self.y))
        else:
            p = sigmoid(self.a * logits + self.b)
        return np.clip(p, EPSILON, 1 - EPSILON)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "isotonic":
            return {"kind": self.kind, "x": list(self.x), "y": list(self.y)}
        return {"kind": self.kind, "a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        kind = str(data.get("kind", "identity"))
        if kind == "isotonic":
            return cls(kind=kind, x=tuple(data["x"]), y=tuple(data["y"]))
        return cls(kind=kind, a=float(data.get("a", 1.0)), b=float(data.get("b", 0.0)))


IDENTITY = Calibration()


def calibrate(
    table: Mapping[str, Calibration], logits: FloatArray, languages: npt.NDArray[np.str_]
) -> FloatArray:
    """Each row's logit through its language's calibration (pooled ``default`` otherwise)."""
    out = np.empty(len(logits))
    default = table.get("default", IDENTITY)
    for language in np.unique(languages):
        mask = languages == language
        out[mask] = table.get(str(language), default).apply(logits[mask])
    return out
