"""FinnSentiment 1.1 (Lindén, Jauhiainen & Hardwick 2023): Suomi24 forum sentences, 3 annotators.

Raw format (per the Language Bank's README): one UTF-8 TSV; column 4 is the majority
polarity of the three annotators (-1, 0, 1) and the sentence is the last column (the
columns in between hold the single annotations, a derived 1-5 score, re-annotations,
the cross-validation split, batch and corpus index). Not on GitHub: this reads
``../shared/eval/fi_finnsentiment/*.tsv`` once the lead has put the file there. No split
column is relied on: hash of normalised text, 80/10/10.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.classify.training.convert import common

SET_ID = "fi_finnsentiment"
DOMAIN = "forum_comments"
FOLDER = common.SHARED_EVAL / "fi_finnsentiment"
UPSET = {"-1": 1, "0": 0, "1": 0}
MAJORITY = 3  # zero-based index of "majority value"


def parse(raw: str) -> Iterator[common.Row]:
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        majority = fields[MAJORITY].strip() if len(fields) > MAJORITY + 1 else ""
        if majority not in UPSET:
            if number == 1:
                continue  # a header row
            raise ValueError(f"{SET_ID} line {number}: column 4 must be -1, 0 or 1: {line!r}")
        text = common.clean(fields[-1])
        yield common.make_row(
            text, "fi", {"upset": UPSET[majority]}, SET_ID, common.hash_split(text), DOMAIN
        )


def main() -> None:
    args = common.arguments(__doc__ or SET_ID)
    files = sorted(FOLDER.glob("*.tsv"))
    if not files:
        raise SystemExit(
            f"no TSV in {FOLDER}: see services/classify/training/sets/pending/{SET_ID}.yaml"
        )
    rows = [row for path in files for row in parse(path.read_text(encoding="utf-8"))]
    common.write_set(SET_ID, rows, args.limit)


if __name__ == "__main__":
    main()
