"""IndoNLU SmSA (Purwarianti & Crisdayanti 2019): Indonesian reviews and comments, 3-way sentiment.

Raw format: ``text<TAB>label`` per line, no header, label in {positive, neutral, negative};
official train/valid/test files. Read from ``../shared/eval/id_indonlu``.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.classify.training.convert import common

SET_ID = "id_smsa"
DOMAIN = "reviews_mixed"
FOLDER = common.SHARED_EVAL / "id_indonlu"
FILES = {split: f"smsa_doc-sentiment-prosa_{split}_preprocess.tsv" for split in common.SPLITS}
UPSET = {"negative": 1, "neutral": 0, "positive": 0}


def parse(raw: str, split: str) -> Iterator[common.Row]:
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        text, sep, label = line.rpartition("\t")
        if not sep or label.strip() not in UPSET:
            raise ValueError(
                f"{SET_ID} {split} line {number}: expected text<TAB>label, got {line!r}"
            )
        yield common.make_row(
            common.clean(text), "id", {"upset": UPSET[label.strip()]}, SET_ID, split, DOMAIN
        )


def main() -> None:
    args = common.arguments(__doc__ or SET_ID)
    rows = [
        row
        for split, name in FILES.items()
        for row in parse((FOLDER / name).read_text(encoding="utf-8"), split)
    ]
    common.write_set(SET_ID, rows, args.limit)


if __name__ == "__main__":
    main()
