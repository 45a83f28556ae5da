"""Complaints on social media (Preoţiuc-Pietro, Găman & Aletras, ACL 2019): tweets to companies.

3,449 English tweets hand-labelled complaint (1) / not complaint (0): replies to nine
domains' customer-service accounts (services, software, electronics, apparel, ...)
plus random tweets and replies. Header-less ``id,text,label,domain`` CSV.
complaint -> upset 1; not complaint -> upset 0. Company-domain rows get domain
service_tweets, the random ones general_tweets. No official split: hash 80/10/10.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.classify.training.convert.common import (
    Row,
    clean,
    convert_pinned,
    hash_split,
    make_row,
)

SET_ID = "en_complaint_tweets"
REPO = "danielpreotiuc/complaints-social-media"
COMMIT = "54e3402c129341809b7f1d9889d9311c3f1c1c16"
PATH = "complaints-data.csv"
RANDOM = {"random_tweet", "random_reply"}


def parse(raw: str) -> Iterator[Row]:
    for number, record in enumerate(csv.reader(io.StringIO(raw)), 1):
        if len(record) != 4 or record[2] not in {"0", "1"}:
            raise ValueError(f"{SET_ID}: record {number} is not id,text,0|1,domain")
        text = clean(record[1])
        domain = "general_tweets" if record[3] in RANDOM else "service_tweets"
        yield make_row(text, "en", {"upset": int(record[2])}, SET_ID, hash_split(text), domain)


def main() -> None:
    convert_pinned(SET_ID, REPO, COMMIT, PATH, parse, description=__doc__)


if __name__ == "__main__":
    main()
