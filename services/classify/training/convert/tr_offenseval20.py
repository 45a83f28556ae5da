"""OffensEval-TR 2020: Turkish tweets hand-labelled offensive or not (Çöltekin 2020).

OFF (1) -> abusive 1, NOT (0) -> abusive 0 (issue 15 point 8). The official test set
(tweets + gold labels) is kept; valid is carved from the training file by hash.
"""

from __future__ import annotations

from services.classify.training.convert.common import arguments, git_show, write_set
from services.classify.training.convert.offenseval import parse_test, parse_training

SET_ID = "tr_offenseval20"
REPO = "shaoncsecu/JAK-OffensEval"
COMMIT = "3ec8cc38dc930184cd7177afc5c041d28984cd48"
TRAIN = "data/turkish/full.tsv"
TEST = "data/test_data/turkish/test.tsv"
GOLD = "data/gold_labels/turkish-goldlabels.tsv"


def main() -> None:
    args = arguments(__doc__ or SET_ID)

    def read(path: str) -> str:
        return git_show(REPO, COMMIT, path, args.mirror_root).decode("utf-8-sig")

    rows = [
        *parse_training(read(TRAIN), SET_ID, "tr"),
        *parse_test(read(TEST), read(GOLD), SET_ID, "tr"),
    ]
    write_set(SET_ID, rows, args.limit)


if __name__ == "__main__":
    main()
