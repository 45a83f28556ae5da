"""UCI "Sentiment Labelled Sentences": Amazon product and Yelp restaurant review sentences.

Kotzias et al., KDD 2015: 500 positive + 500 negative hand-picked sentences per site
(``sentence <TAB> 1|0``). 0 (negative) -> upset 1, 1 (positive) -> upset 0. The IMDB
part (film reviews, not customer text) is not used. No official split: hash 80/10/10.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.classify.training.convert.common import (
    Row,
    arguments,
    clean,
    hash_split,
    make_row,
    read_files,
    write_set,
)

SET_ID = "en_uci_reviews"
REPO = "kvrao/sentiment_analysis"
COMMIT = "462f7304ab341f1b5014e6eae56100bfe35d703a"
FOLDER = "sentiment labelled sentences"
FILES = {"amazon_cells_labelled.txt": "product_reviews", "yelp_labelled.txt": "restaurant_reviews"}
UPSET = {"0": 1, "1": 0}


def parse(raw: str, domain: str) -> Iterator[Row]:
    for number, line in enumerate(raw.split("\n"), 1):
        if not line.strip():
            continue
        text, tab, score = line.rstrip("\r").rpartition("\t")
        if not tab or score.strip() not in UPSET:
            raise ValueError(f"{SET_ID}: line {number} is not 'sentence<TAB>0|1'")
        text = clean(text)
        yield make_row(
            text, "en", {"upset": UPSET[score.strip()]}, SET_ID, hash_split(text), domain
        )


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    files = {domain: f"{FOLDER}/{name}" for name, domain in FILES.items()}
    raw = read_files(REPO, COMMIT, files, args.mirror_root)
    write_set(
        SET_ID, [row for domain, text in raw.items() for row in parse(text, domain)], args.limit
    )


if __name__ == "__main__":
    main()
