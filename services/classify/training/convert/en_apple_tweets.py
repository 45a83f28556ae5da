"""Tweets to / about @Apple (Dec 2014), crowd-labelled in CrowdFlower's Data for Everyone library.

``sentiment`` is 1 (negative), 3 (neutral), 5 (positive) or not_relevant. 1 -> upset 1;
3, 5 -> upset 0; not_relevant dropped. Many neutral rows are #AAPL stock news, kept
as "not upset" text. The CSV is single-byte (cp1252) encoded and the tweets keep HTML
entities (``&amp;``), which are unescaped. No official split: hash 80/10/10.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterator

from services.classify.training.convert.common import (
    Row,
    clean,
    convert_pinned,
    hash_split,
    make_row,
)

SET_ID = "en_apple_tweets"
REPO = "akshat1289/data_mining"
COMMIT = "479ddfc8bf7697b38c8319d392365b31efdf0918"
PATH = "Apple-Twitter-Sentiment-DFE.csv"
UPSET = {"1": 1, "3": 0, "5": 0}


def parse(raw: str) -> Iterator[Row]:
    for number, record in enumerate(csv.DictReader(io.StringIO(raw)), 2):
        label = (record.get("sentiment") or "").strip()
        if label == "not_relevant":
            continue
        if label not in UPSET or record.get("text") is None:
            raise ValueError(f"{SET_ID}: record {number} has no text or a label outside 1/3/5")
        text = clean(html.unescape(record["text"]))
        yield make_row(
            text, "en", {"upset": UPSET[label]}, SET_ID, hash_split(text), "service_tweets"
        )


def main() -> None:
    convert_pinned(
        SET_ID, REPO, COMMIT, PATH, parse, encoding="cp1252", errors="replace", description=__doc__
    )


if __name__ == "__main__":
    main()
