"""GermEval 2017 (subtask B): German social-media and web posts about Deutsche Bahn.

Document-level polarity annotated by hand (Wojatzki et al. 2017). Only posts marked
relevant (feedback about the Bahn) are kept; off-topic ones are not customer text.
negative -> upset 1; neutral, positive -> upset 0. The official train file is too
large for a snapshot, so dev + the synchronic test set are pooled and split by hash;
once ``../shared/eval/de_germeval17/train_v1.4.tsv`` exists the official splits are
used instead (train -> train, dev -> valid, synchronic test -> test).
"""

from __future__ import annotations

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

SET_ID = "de_germeval17"
REPO = "LSX-UniWue/SuperGLEBer"
COMMIT = "5d3c59a91ab3b5011a45a28cfafe813cf657111d"
DEV, TEST = "data/Germeval/2017/dev.tsv", "data/Germeval/2017/test.tsv"
OFFICIAL_TRAIN = SHARED_EVAL / "de_germeval17" / "train_v1.4.tsv"
UPSET = {"negative": 1, "neutral": 0, "positive": 0}


def unquote(field: str) -> str:
    """Some texts carry CSV quoting ("...""x""...") inside the plain TSV."""
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field


def parse(raw: str, split: str | None = None) -> Iterator[Row]:
    """``id <TAB> text <TAB> relevance <TAB> sentiment [<TAB> aspects]`` lines.

    ``split`` None: each row's split comes from the hash of its text.
    """
    for number, line in enumerate(raw.split("\n"), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 4 or fields[3].strip() not in UPSET:
            raise ValueError(f"{SET_ID}: line {number} is not id/text/relevance/sentiment")
        if fields[2].strip() != "true":
            continue
        text = clean(unquote(fields[1]))
        labels = {"upset": UPSET[fields[3].strip()]}
        part = split or hash_split(text)
        yield make_row(text, "de", labels, SET_ID, part, "service_tweets")


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    raw = read_files(REPO, COMMIT, {"dev": DEV, "test": TEST}, args.mirror_root)
    write_set(
        SET_ID, official_or_pooled(parse, raw["dev"], raw["test"], OFFICIAL_TRAIN), args.limit
    )


if __name__ == "__main__":
    main()
