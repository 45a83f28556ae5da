"""Apple App Store reviews of the ChatGPT iOS app (May-June 2023), with the reviewer's stars.

``date,title,review,rating`` CSV. The text is the review's title and body as written.
Stars 1-2 -> upset 1, 4-5 -> upset 0, 3 dropped (mixed). No official split: hash 80/10/10.
About 8 % of the reviews are in Chinese or other languages: those are dropped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.classify.training.convert.common import (
    Row,
    arguments,
    clean,
    git_show,
    hash_split,
    make_row,
    write_set,
)
from services.classify.training.convert.language_filter import keep_language

SET_ID = "en_chatgpt_app_reviews"
REPO = "rijinrajanrr14/ChatGPT-App-Reviews-Sentiment-Analysis"
COMMIT = "9a29debc1173c44a6c7b05a02771a363736cbe0c"
PATH = "chatgpt_reviews.csv"
UPSET = {"1": 1, "2": 1, "4": 0, "5": 0}


def parse(raw: str) -> Iterator[Row]:
    for number, record in enumerate(csv.DictReader(io.StringIO(raw)), 2):
        stars = (record.get("rating") or "").strip()
        if stars not in {*UPSET, "3"} or record.get("review") is None:
            raise ValueError(f"{SET_ID}: record {number} has no review or a rating outside 1-5")
        if stars == "3":
            continue
        text = clean("\n".join(part for part in (record.get("title"), record["review"]) if part))
        yield make_row(text, "en", {"upset": UPSET[stars]}, SET_ID, hash_split(text), "app_reviews")


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    raw = git_show(REPO, COMMIT, PATH, args.mirror_root).decode("utf-8")
    write_set(SET_ID, keep_language(parse(raw), SET_ID), args.limit)


if __name__ == "__main__":
    main()
