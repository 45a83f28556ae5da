"""Eskelinen et al. 2023: Suomi24 forum comments, each annotated by people for ONE toxicity label.

Raw format: ``all_annotations.tsv``, header ``ID  label   text`` then ``id<TAB>label<TAB>text``
where label is one of toxicity, severe_toxicity, obscene, insult, identity_attack, threat,
or the same with a ``not-`` prefix. A few ids carry two labels.

Mapping: ``abusive`` = 1 when any label is positive; ``abusive`` = 0 only for ``not-toxicity``
(a comment judged "not an insult" may still be toxic, so other ``not-`` labels say nothing
about abuse). ``threat`` = 1/0 from ``threat``/``not-threat``. Rows left with no label are
dropped. No official split: hash of the normalised text, 80/10/10.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.classify.training.convert import common

SET_ID = "fi_suomi24_toxicity"
DOMAIN = "forum_comments"
REPO = "TurkuNLP/toxicity-classifier"
COMMIT = "34d0e992f23fa8304c27bcc4851c275e17344b3b"
PATH = "annotations/all_annotations.tsv"
CATEGORIES = {"toxicity", "severe_toxicity", "obscene", "insult", "identity_attack", "threat"}


def labels_for(annotations: set[str]) -> dict[str, int]:
    labels: dict[str, int] = {}
    if annotations & CATEGORIES:
        labels["abusive"] = 1
    elif "not-toxicity" in annotations:
        labels["abusive"] = 0
    if "threat" in annotations:
        labels["threat"] = 1
    elif "not-threat" in annotations:
        labels["threat"] = 0
    return labels


def parse(raw: str) -> Iterator[common.Row]:
    texts: dict[str, str] = {}
    annotations: dict[str, set[str]] = {}
    for number, line in enumerate(raw.splitlines()[1:], 2):
        if not line.strip():
            continue
        parts = line.split("\t")
        label = parts[1].strip() if len(parts) == 3 else ""
        if label.removeprefix("not-") not in CATEGORIES:
            raise ValueError(
                f"{SET_ID} line {number}: expected id<TAB>label<TAB>text, got {line!r}"
            )
        texts[parts[0]] = common.clean(parts[2])
        annotations.setdefault(parts[0], set()).add(label)
    for key, text in texts.items():
        labels = labels_for(annotations[key])
        if labels:
            yield common.make_row(text, "fi", labels, SET_ID, common.hash_split(text), DOMAIN)


def main() -> None:
    common.convert_pinned(SET_ID, REPO, COMMIT, PATH, parse, description=__doc__)


if __name__ == "__main__":
    main()
