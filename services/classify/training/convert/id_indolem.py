"""IndoLEM sentiment (Koto et al. 2020): Indonesian tweets and Airy hotel reviews, pos/neg.

Raw format: ``sentiment/data/{train,dev,test}0.csv`` with header ``sentence,sentiment``;
sentiment is 1 (positive) or 0 (negative). The publishers give five cross-validation
folds; we use fold 0 as the official train/valid/test split.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.classify.training.convert import common

SET_ID = "id_indolem"
DOMAIN = "hotel_reviews_tweets"
REPO = "indolem/indolem"
COMMIT = "777fdc680cfa85243f08e60045e3d34ca49756ed"
FILES = {"train": "train0.csv", "valid": "dev0.csv", "test": "test0.csv"}
UPSET = {"0": 1, "1": 0}


def parse(raw: str, split: str) -> Iterator[common.Row]:
    for number, record in enumerate(csv.DictReader(io.StringIO(raw)), 2):
        label = (record.get("sentiment") or "").strip()
        if label not in UPSET:
            raise ValueError(f"{SET_ID} {split} record {number}: sentiment must be 0 or 1")
        text = common.clean(record.get("sentence") or "")
        yield common.make_row(text, "id", {"upset": UPSET[label]}, SET_ID, split, DOMAIN)


def main() -> None:
    args = common.arguments(__doc__ or SET_ID)
    rows = [
        row
        for split, name in FILES.items()
        for row in parse(
            common.git_show(REPO, COMMIT, f"sentiment/data/{name}", args.mirror_root).decode(
                "utf-8"
            ),
            split,
        )
    ]
    common.write_set(SET_ID, rows, args.limit)


if __name__ == "__main__":
    main()
