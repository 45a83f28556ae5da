"""Turkish product reviews collected online (fthbrmnby/turkish-text-data, CC BY-SA 4.0).

235,165 reviews in ``reviews.tar.gz``: ``reviews.pos`` (220,284) and ``reviews.neg``
(14,881), one review per line. neg -> upset 1, pos -> upset 0. The archive is >= 4 MiB,
so it is absent from the fetched snapshot: this reads
``../shared/eval/tr_product_reviews/reviews.tar.gz`` once the lead has put it there
(source pinned in sets/tr_product_reviews.yaml). No official split: hash 80/10/10;
the common cap keeps <= 30,000 rows per split with the label shares unchanged.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

from services.classify.training.convert.common import (
    SHARED_EVAL,
    Row,
    arguments,
    clean,
    hash_split,
    make_row,
    write_set,
)

SET_ID = "tr_product_reviews"
SOURCE = SHARED_EVAL / SET_ID / "reviews.tar.gz"
MEMBERS = {"reviews.neg": 1, "reviews.pos": 0}


def parse(archive: bytes) -> Iterator[Row]:
    """Every line of the two members of the tar.gz; both must be present."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        found = {member.name.rsplit("/", 1)[-1]: member for member in tar.getmembers()}
        missing = sorted(set(MEMBERS) - set(found))
        if missing:
            raise ValueError(f"{SET_ID}: archive lacks {', '.join(missing)}")
        for name, upset in MEMBERS.items():
            handle = tar.extractfile(found[name])
            if handle is None:
                raise ValueError(f"{SET_ID}: {name} is not a regular file")
            for line in handle.read().decode("utf-8").splitlines():
                text = clean(line)
                yield make_row(
                    text, "tr", {"upset": upset}, SET_ID, hash_split(text), "product_reviews"
                )


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    if not SOURCE.is_file():
        raise SystemExit(f"{SOURCE} is missing: see services/classify/training/sets/{SET_ID}.yaml")
    write_set(SET_ID, parse(SOURCE.read_bytes()), args.limit)


if __name__ == "__main__":
    main()
