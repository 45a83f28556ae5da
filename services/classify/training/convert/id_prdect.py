"""PRDECT-ID (Sutoyo et al. 2022): Indonesian Tokopedia product reviews, human sentiment labels.

Raw format: one CSV with a header; we use ``Customer Review`` and ``Sentiment``
(Positive | Negative, annotated by people from the review text; the star rating is not
used). No official split: hash of the normalised text, 80/10/10.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.classify.training.convert import common

SET_ID = "id_prdect"
DOMAIN = "product_reviews"
REPO = "rhiosutoyo/PRDECT-ID-Indonesian-Product-Reviews-Dataset"
COMMIT = "5d4941b8e033cb59cd401690a5b166bb04ed0859"
PATH = "Dataset/PRDECT-ID Dataset.csv"
UPSET = {"Negative": 1, "Positive": 0}


def parse(raw: str) -> Iterator[common.Row]:
    for number, record in enumerate(csv.DictReader(io.StringIO(raw)), 2):
        label = (record.get("Sentiment") or "").strip()
        if label not in UPSET:
            raise ValueError(f"{SET_ID} record {number}: unknown Sentiment {label!r}")
        text = common.clean(record.get("Customer Review") or "")
        yield common.make_row(
            text, "id", {"upset": UPSET[label]}, SET_ID, common.hash_split(text), DOMAIN
        )


def main() -> None:
    common.convert_pinned(SET_ID, REPO, COMMIT, PATH, parse, description=__doc__)


if __name__ == "__main__":
    main()
