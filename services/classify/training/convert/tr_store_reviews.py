# ruff: noqa: RUF001, RUF002  (Turkish dotless i is the real label text)
"""Turkish online-store product reviews (the Kaggle "mağaza yorumları duygu analizi" set).

11.4k customer reviews of electronics and home appliances labelled Olumlu (positive),
Olumsuz (negative) or Tarafsız (neutral). Olumsuz -> upset 1; Olumlu, Tarafsız -> upset
0. The file is UTF-16 CSV with a ``Görüş,Durum`` header. No official split: hash 80/10/10.
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

SET_ID = "tr_store_reviews"
REPO = "talhaucarr/data-mining-project"
COMMIT = "71b707f3c3af0051894dd671e0a0f61bbb49a760"
PATH = "magaza_yorumlari_duygu_analizi.csv"
UPSET = {"Olumsuz": 1, "Olumlu": 0, "Tarafsız": 0}


def parse(raw: str) -> Iterator[Row]:
    for number, record in enumerate(csv.DictReader(io.StringIO(raw)), 2):
        label = (record.get("Durum") or "").strip()
        if label not in UPSET or record.get("Görüş") is None:
            raise ValueError(f"{SET_ID}: record {number} is not Görüş,Olumlu|Olumsuz|Tarafsız")
        # Some reviews keep the shop's HTML line breaks.
        text = clean(record["Görüş"].replace("<br />", "\n"))
        yield make_row(
            text, "tr", {"upset": UPSET[label]}, SET_ID, hash_split(text), "product_reviews"
        )


def main() -> None:
    convert_pinned(SET_ID, REPO, COMMIT, PATH, parse, encoding="utf-16", description=__doc__)


if __name__ == "__main__":
    main()
