"""German hotel-review sentences with hand-labelled aspect polarities (SuperGLEBer "Hotel ABSA").

Each line is ``__label__ASPECT:polarity [...] <TAB> sentence``. A sentence with any
negative aspect -> upset 1 (a mixed sentence still carries a complaint); sentences
with only positive / neutral aspects -> upset 0. Official train/dev/test kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.classify.training.convert.common import (
    Row,
    arguments,
    clean,
    make_row,
    read_files,
    write_set,
)

SET_ID = "de_hotel_absa"
REPO = "LSX-UniWue/SuperGLEBer"
COMMIT = "5d3c59a91ab3b5011a45a28cfafe813cf657111d"
FILES = {
    "train": "data/Hotel_Aspect/train.txt",
    "valid": "data/Hotel_Aspect/dev.txt",
    "test": "data/Hotel_Aspect/test.txt",
}
POLARITIES = {"positiv", "negativ", "neutral"}


def parse(raw: str, split: str) -> Iterator[Row]:
    for number, line in enumerate(raw.split("\n"), 1):
        if not line.strip():
            continue
        labels, tab, text = line.partition("\t")
        polarities = {label.rsplit(":", 1)[-1] for label in labels.split()}
        if not tab or not labels.startswith("__label__") or not polarities <= POLARITIES:
            raise ValueError(f"{SET_ID}: line {number} is not '__label__A:polarity<TAB>text'")
        upset = int("negativ" in polarities)
        yield make_row(clean(text), "de", {"upset": upset}, SET_ID, split, "hotel_reviews")


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    raw = read_files(REPO, COMMIT, FILES, args.mirror_root)
    write_set(
        SET_ID, [row for split, text in raw.items() for row in parse(text, split)], args.limit
    )


if __name__ == "__main__":
    main()
