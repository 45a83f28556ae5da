"""Twitter US Airline Sentiment: customers' tweets to six US airlines (Feb 2015).

Crowd-labelled negative / neutral / positive (CrowdFlower "Data for Everyone").
negative -> upset 1; neutral, positive -> upset 0. No official split: hash 80/10/10.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.classify.training.convert.common import (
    Row,
    clean,
    convert_pinned,
    hash_split,
    make_row,
)

SET_ID = "en_airline_tweets"
REPO = "MrColinHan/Twitter-US-Airline-Sentiment"
COMMIT = "534528272d7a7de26e9059cbb0d63d76941b5cf5"
PATH = "Kaggle_Tweets.csv"
UPSET = {"negative": 1, "neutral": 0, "positive": 0}


def parse(raw: str) -> Iterator[Row]:
    """Rows of the Kaggle ``Tweets.csv`` (header with ``airline_sentiment`` and ``text``)."""
    for record in csv.DictReader(io.StringIO(raw)):
        label = record["airline_sentiment"].strip()
        if label not in UPSET:
            raise ValueError(f"{SET_ID}: unknown label {label!r}")
        text = clean(record["text"])
        yield make_row(
            text, "en", {"upset": UPSET[label]}, SET_ID, hash_split(text), "service_tweets"
        )


def main() -> None:
    convert_pinned(SET_ID, REPO, COMMIT, PATH, parse, description=__doc__)


if __name__ == "__main__":
    main()
