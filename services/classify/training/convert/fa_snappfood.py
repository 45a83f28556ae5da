"""SnappFood: Persian customer comments on an Iranian food-delivery app, HAPPY / SAD.

Published with ParsBERT (Farahani et al. 2020); the labels come with the set (the
authors do not say how they were assigned). SAD -> upset 1, HAPPY -> upset 0. The
official train file is >= 4 MiB and absent from the snapshot, so the official dev +
test files are pooled and split by hash 80/10/10; once
``../shared/eval/fa_snappfood/train.csv`` exists the official splits are used instead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.classify.training.convert.common import (
    SHARED_EVAL,
    Row,
    arguments,
    clean,
    hash_split,
    make_row,
    official_or_pooled,
    read_files,
    write_set,
)

SET_ID = "fa_snappfood"
REPO = "conflictednerd/Unsupervised-Style-Transfer"
COMMIT = "2ae7b92dccc5bfcc0d8653422eb757cef1e6e0f8"
DEV, TEST = "data/snappfood/dev.csv", "data/snappfood/test.csv"
OFFICIAL_TRAIN = SHARED_EVAL / "fa_snappfood" / "train.csv"
UPSET = {"SAD": 1, "HAPPY": 0}


def parse(raw: str, split: str | None = None) -> Iterator[Row]:
    """``comment,label`` CSV with a header; label is HAPPY or SAD (None: split by hash)."""
    for number, record in enumerate(csv.DictReader(io.StringIO(raw)), 2):
        label = (record.get("label") or "").strip()
        if label not in UPSET or record.get("comment") is None:
            raise ValueError(f"{SET_ID}: record {number} is not comment,HAPPY|SAD")
        text = clean(record["comment"])
        part = split or hash_split(text)
        yield make_row(text, "fa", {"upset": UPSET[label]}, SET_ID, part, "food_delivery")


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    raw = read_files(REPO, COMMIT, {"dev": DEV, "test": TEST}, args.mirror_root)
    write_set(
        SET_ID, official_or_pooled(parse, raw["dev"], raw["test"], OFFICIAL_TRAIN), args.limit
    )


if __name__ == "__main__":
    main()
