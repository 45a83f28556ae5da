"""GermEval 2018 task 1: German tweets hand-labelled OFFENSE / OTHER (Wiegand et al. 2018).

OFFENSE -> abusive 1, OTHER -> abusive 0 (no upset label: issue 15 point 8).
The official test set is kept; a valid split is carved from the training file by hash.
``|LBR|`` marks a line break in the original tweet.
"""

from __future__ import annotations

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

SET_ID = "de_germeval18_offensive"
REPO = "uds-lsv/GermEval-2018-Data"
COMMIT = "9877472d39523effd54cd079b4c61157ed141508"
FILES = {"train": "germeval2018.training.txt", "test": "germeval2018.test.txt"}
ABUSIVE = {"OFFENSE": 1, "OTHER": 0}


def parse(raw: str, split: str) -> Iterator[Row]:
    """``tweet <TAB> OFFENSE|OTHER <TAB> fine label`` lines."""
    for number, line in enumerate(raw.split("\n"), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or fields[1] not in ABUSIVE:
            raise ValueError(f"{SET_ID}: line {number} is not 'tweet<TAB>OFFENSE|OTHER<TAB>fine'")
        text = clean(fields[0].replace("|LBR|", "\n"))
        part = train_or_valid(text, split)
        labels = {"abusive": ABUSIVE[fields[1]]}
        yield make_row(text, "de", labels, SET_ID, part, "offensive_tweets")


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    raw = read_files(REPO, COMMIT, FILES, args.mirror_root)
    write_set(
        SET_ID, [row for split, text in raw.items() for row in parse(text, split)], args.limit
    )


if __name__ == "__main__":
    main()
