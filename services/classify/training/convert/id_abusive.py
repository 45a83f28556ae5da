"""Ibrohim & Budi 2019: Indonesian tweets, multi-label hate speech and abusive language.

Raw format: ``re_dataset.csv`` with a header ``Tweet,HS,Abusive,HS_Individual,...``; labels
are 0/1. We keep only ``Abusive`` (issue 15 point 8). The file is not clean UTF-8 and
carries emoji as literal ``\\xNN`` byte escapes; both are dropped from the text. No official
split: hash of the normalised text, 80/10/10.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from services.classify.training.convert import common

SET_ID = "id_abusive"
DOMAIN = "offensive_tweets"
REPO = "okkyibrohim/id-multi-label-hate-speech-and-abusive-language-detection"
COMMIT = "be98de98e974b65838d2b5145ee2c89e9bf53a6b"
PATH = "re_dataset.csv"
# Byte escapes such as \xf0\x9f\x98\x82 left by the publishers' scraper, and U+FFFD.
_NOISE = re.compile(r"(\\x[0-9a-fA-F]{2})+|\ufffd")


def parse(raw: bytes) -> Iterator[common.Row]:
    text = raw.decode("utf-8", errors="replace")
    for number, record in enumerate(csv.DictReader(io.StringIO(text)), 2):
        label = (record.get("Abusive") or "").strip()
        if label not in {"0", "1"}:
            raise ValueError(f"{SET_ID} record {number}: Abusive must be 0 or 1, got {label!r}")
        tweet = common.clean(_NOISE.sub(" ", record.get("Tweet") or "")).strip(" '")
        yield common.make_row(
            tweet, "id", {"abusive": int(label)}, SET_ID, common.hash_split(tweet), DOMAIN
        )


def main() -> None:
    args = common.arguments(__doc__ or SET_ID)
    common.write_set(
        SET_ID, parse(common.git_show(REPO, COMMIT, PATH, args.mirror_root)), args.limit
    )


if __name__ == "__main__":
    main()
