"""OLID v1.0 (OffensEval 2019): English tweets crowd-labelled offensive or not (sub-task A).

OFF -> abusive 1, NOT -> abusive 0 (issue 15 point 8). Official test set kept; valid is
carved from the training file by hash. Mentions and links are already @USER / URL.
"""

from __future__ import annotations

from services.classify.training.convert.common import arguments, git_show, write_set
from services.classify.training.convert.offenseval import parse_test, parse_training

SET_ID = "en_olid_offensive"
REPO = "shaoncsecu/JAK-OffensEval"
COMMIT = "3ec8cc38dc930184cd7177afc5c041d28984cd48"
FOLDER = "External_Datasets/RAW/OLIDv1.0"


def main() -> None:
    args = arguments(__doc__ or SET_ID)

    def read(name: str) -> str:
        return git_show(REPO, COMMIT, f"{FOLDER}/{name}", args.mirror_root).decode("utf-8-sig")

    rows = [
        *parse_training(read("olid-training-v1.0.tsv"), SET_ID, "en"),
        *parse_test(read("testset-levela.tsv"), read("labels-levela.csv"), SET_ID, "en"),
    ]
    write_set(SET_ID, rows, args.limit)


if __name__ == "__main__":
    main()
