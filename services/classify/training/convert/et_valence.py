"""Estonian Valence Corpus (Pajupuu, Altrov & Pajupuu 2016), the copy in EKT1/valence.

Raw format: ``valence/korpus.csv``, no header, ``label,text`` per record with label in
{positiivne, negatiivne, neutraalne, vastuoluline}; the text is a newspaper paragraph
(Postimees, Õhtuleht) whose polarity native readers judged. No official split in this
copy: hash of the normalised text, 80/10/10.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.classify.training.convert import common

SET_ID = "et_valence"
DOMAIN = "news_paragraphs"
REPO = "EKT1/valence"
COMMIT = "c04db8e397ec01e5cc2c8dd6be2abd86aae91cd7"
PATH = "valence/korpus.csv"
UPSET = {"negatiivne": 1, "positiivne": 0, "neutraalne": 0}
MIXED = "vastuoluline"  # both polarities: neither upset nor calm, so dropped


def parse(raw: str) -> Iterator[common.Row]:
    for number, record in enumerate(csv.reader(io.StringIO(raw)), 1):
        if not record:
            continue
        if len(record) != 2 or record[0] not in {*UPSET, MIXED}:
            raise ValueError(f"{SET_ID} record {number}: expected label,text, got {record!r}")
        if record[0] == MIXED:
            continue
        text = common.clean(record[1])
        yield common.make_row(
            text, "et", {"upset": UPSET[record[0]]}, SET_ID, common.hash_split(text), DOMAIN
        )


def main() -> None:
    common.convert_pinned(SET_ID, REPO, COMMIT, PATH, parse, description=__doc__)


if __name__ == "__main__":
    main()
