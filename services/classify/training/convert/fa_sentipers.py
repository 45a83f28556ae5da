"""SentiPers (via DeepSentiPers): Persian sentences from Digikala users' product reviews.

Hand-labelled polarity -2..2 (Hosseini et al. 2018). -2, -1 -> upset 1; 0, 1, 2 -> upset 0.
Only ``original.csv`` (train) and ``test.csv`` are read: ``balanced.csv`` and
``translation.csv`` are machine-augmented text, never used here. A valid split is
carved from the train file by hash; the official test file stays test.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.classify.training.convert.common import (
    Row,
    arguments,
    clean,
    make_row,
    read_files,
    train_or_valid,
    write_set,
)

SET_ID = "fa_sentipers"
REPO = "JoyeBright/DeepSentiPers"
COMMIT = "5c5ce118965e1d2a924216eb223763ba52ea7631"
FILES = {"train": "Dataset/original.csv", "test": "Dataset/test.csv"}
UPSET = {"-2": 1, "-1": 1, "0": 0, "1": 0, "2": 0}


def parse(raw: str, split: str) -> Iterator[Row]:
    """Header-less ``"sentence","polarity"`` CSV."""
    for number, record in enumerate(csv.reader(io.StringIO(raw)), 1):
        if len(record) != 2 or record[1].strip() not in UPSET:
            raise ValueError(f"{SET_ID}: record {number} is not sentence,polarity(-2..2)")
        text = clean(record[0])
        part = train_or_valid(text, split)
        labels = {"upset": UPSET[record[1].strip()]}
        yield make_row(text, "fa", labels, SET_ID, part, "product_reviews")


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    raw = read_files(REPO, COMMIT, FILES, args.mirror_root)
    write_set(
        SET_ID, [row for split, text in raw.items() for row in parse(text, split)], args.limit
    )


if __name__ == "__main__":
    main()
