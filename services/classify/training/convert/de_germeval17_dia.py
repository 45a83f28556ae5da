"""GermEval 2017, diachronic test set: posts about Deutsche Bahn from a later period.

The same annotation as ``de_germeval17`` (Wojatzki et al. 2017: document polarity by
hand), but the 1,842 posts of the official diachronic test set (test_TIMESTAMP2,
Nov 2016 - Jan 2017), which no other copy in the corpus carries. Read from the official
XML as redistributed in KaoCircle/modified_GermEval17 (its unmodified
``test_dia-2017-09-15.xml``; the repository's ``fixed_`` files only repair aspect
offsets, which are not used). Posts marked relevance=false (not about the Bahn) are
dropped; negative -> upset 1, neutral / positive -> upset 0. Hash of text, 80/10/10.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree import ElementTree

from services.classify.training.convert.common import (
    Row,
    clean,
    convert_pinned,
    hash_split,
    make_row,
)
from services.classify.training.convert.de_germeval17 import UPSET

SET_ID = "de_germeval17_dia"
REPO = "KaoCircle/modified_GermEval17"
COMMIT = "b48ecf9498f7fd1c7ac9ec142fd13c8768b0cba0"
PATH = "data/test_dia-2017-09-15.xml"


def parse(raw: str) -> Iterator[Row]:
    """``<Documents><Document id=...><relevance/><sentiment/><text/></Document>...``."""
    root = ElementTree.fromstring(raw)
    for number, document in enumerate(root.iter("Document"), 1):
        relevance = (document.findtext("relevance") or "").strip()
        sentiment = (document.findtext("sentiment") or "").strip()
        if relevance not in {"true", "false"} or sentiment not in UPSET:
            raise ValueError(f"{SET_ID}: document {number} has no relevance / sentiment")
        if relevance != "true":
            continue
        text = clean(document.findtext("text") or "")
        yield make_row(
            text, "de", {"upset": UPSET[sentiment]}, SET_ID, hash_split(text), "service_tweets"
        )


def main() -> None:
    convert_pinned(SET_ID, REPO, COMMIT, PATH, parse, description=__doc__)


if __name__ == "__main__":
    main()
