"""ScandiSent, Finnish part (Isbister et al. 2021): fi.trustpilot.com reviews, pos/neg by stars.

Raw format (per the publishers' README): ``fi.csv`` with columns ``text`` and ``label``;
label 1 = positive (4-5 stars), 0 = negative (1-2 stars), 3 stars were left out. The
GitHub zip is over the fetch size limit, so this reads ``../shared/eval/fi_scandisent/fi.csv``
once the lead has put the file there. No official split: hash of normalised text, 80/10/10.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.classify.training.convert import common

SET_ID = "fi_scandisent"
DOMAIN = "service_reviews"
SOURCE = common.SHARED_EVAL / "fi_scandisent" / "fi.csv"
UPSET = {"0": 1, "1": 0}


def parse(raw: str) -> Iterator[common.Row]:
    reader = csv.DictReader(io.StringIO(raw))
    if not {"text", "label"} <= set(reader.fieldnames or ()):
        raise ValueError(f"{SET_ID}: expected columns text,label, got {reader.fieldnames}")
    for number, record in enumerate(reader, 2):
        label = (record["label"] or "").strip()
        if label not in UPSET:
            raise ValueError(f"{SET_ID} record {number}: label must be 0 or 1, got {label!r}")
        text = common.clean(record["text"] or "")
        yield common.make_row(
            text, "fi", {"upset": UPSET[label]}, SET_ID, common.hash_split(text), DOMAIN
        )


def main() -> None:
    args = common.arguments(__doc__ or SET_ID)
    if not SOURCE.is_file():
        raise SystemExit(
            f"{SOURCE} is missing: see services/classify/training/sets/pending/{SET_ID}.yaml"
        )
    common.write_set(SET_ID, parse(SOURCE.read_text(encoding="utf-8")), args.limit)


if __name__ == "__main__":
    main()
