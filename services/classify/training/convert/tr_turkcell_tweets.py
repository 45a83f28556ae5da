"""Turkish tweets about the telecom operator Turkcell, labelled olumlu / olumsuz / notr.

``text;label`` lines (semicolon-separated, CSV quoting for tweets with line breaks),
no header, official train (13,832) and test (3,462) files. olumsuz -> upset 1;
olumlu, notr -> upset 0. Rows with neither text nor label (5 blank lines and one
keyboard-mash line in the test file) are skipped. A valid split is carved from the
train file by hash; the test file stays test.
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

SET_ID = "tr_turkcell_tweets"
REPO = "InciNurKurnaz/Duygu-Analizi"
COMMIT = "3ae8ae3221ee930cd7644af8f658757258c919df"
FILES = {"train": "data/train_tweets_set.csv", "test": "data/test_tweets_set.csv"}
UPSET = {"olumsuz": 1, "olumlu": 0, "notr": 0}


def parse(raw: str, split: str) -> Iterator[Row]:
    for number, record in enumerate(csv.reader(io.StringIO(raw), delimiter=";"), 1):
        if len(record) == 2 and not record[1].strip():
            continue  # an unlabelled line in the source (blank or keyboard mash)
        if len(record) != 2 or record[1].strip() not in UPSET:
            raise ValueError(f"{SET_ID}: record {number} is not text;olumlu|olumsuz|notr")
        text = clean(record[0])
        labels = {"upset": UPSET[record[1].strip()]}
        yield make_row(text, "tr", labels, SET_ID, train_or_valid(text, split), "service_tweets")


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    raw = read_files(REPO, COMMIT, FILES, args.mirror_root, encoding="utf-8-sig")
    write_set(
        SET_ID, [row for split, text in raw.items() for row in parse(text, split)], args.limit
    )


if __name__ == "__main__":
    main()
