"""GermEval 2017 (subtask B): German social-media and web posts about Deutsche Bahn.

Document-level polarity annotated by hand (Wojatzki et al. 2017). Only posts marked
relevant (feedback about the Bahn) are kept; off-topic ones are not customer text.
negative -> upset 1; neutral, positive -> upset 0. The official train file is too
large for a snapshot, so dev + the synchronic test set are pooled and split by hash.
"""

from __future__ import annotations

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

SET_ID = "de_germeval17"
REPO = "LSX-UniWue/SuperGLEBer"
COMMIT = "5d3c59a91ab3b5011a45a28cfafe813cf657111d"
PATHS = ("data/Germeval/2017/dev.tsv", "data/Germeval/2017/test.tsv")
UPSET = {"negative": 1, "neutral": 0, "positive": 0}


def unquote(field: str) -> str:
    """Some texts carry CSV quoting ("...""x""...") inside the plain TSV."""
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field


def parse(raw: str) -> Iterator[Row]:
    """``id <TAB> text <TAB> relevance <TAB> sentiment [<TAB> aspects]`` lines."""
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
        yield make_row(text, "de", labels, SET_ID, hash_split(text), "service_tweets")


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    rows = [
        row
        for path in PATHS
        for row in parse(git_show(REPO, COMMIT, path, args.mirror_root).decode("utf-8"))
    ]
    write_set(SET_ID, rows, args.limit)


if __name__ == "__main__":
    main()
