"""Estonian restaurant reviews from dinnerbooking.com (crawled by Vikhlyantseva 2025), stars.

Raw format: ``filtered_final_estonian_restaurant_reviews_dataset.csv`` with a header
(``website,restaurant_name,...,review_text,review_rating_total,review_rating_food,
review_rating_service,review_rating_atmosphere,review_rating_overall_impression,...``);
every rating is a guest's own 1.0-5.0 stars. We use ``review_rating_overall_impression``:
1-2 -> upset 1, 4-5 -> upset 0, 3 dropped. Rows py3langid does not read as Estonian
are dropped. No official split: hash of the normalised text, 80/10/10.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from services.classify.training.convert import common

SET_ID = "et_dinnerbooking"
DOMAIN = "restaurant_reviews"
REPO = "SofyaVikhlyantseva/aspect-based-sentiment-analysis-for-estonian"
COMMIT = "91c1ef5fc755c1154200b69ec72872d64d589ef5"
PATH = (
    "absa_estonian_restaurant_reviews_dataset/"
    "filtered_final_estonian_restaurant_reviews_dataset.csv"
)
STARS = "review_rating_overall_impression"
UPSET = {"1": 1, "2": 1, "4": 0, "5": 0}
# Estonian and the languages guests here might also write in (Finnish is the look-alike).
CANDIDATES = ["et", "fi", "en", "ru", "de", "sv", "lv"]


def parse(raw: str, is_estonian: Callable[[str], bool] = lambda _: True) -> Iterator[common.Row]:
    for number, record in enumerate(csv.DictReader(io.StringIO(raw)), 2):
        try:
            stars = str(int(float(record[STARS])))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{SET_ID} record {number}: no 1-5 {STARS}") from None
        if stars == "3":
            continue
        if stars not in UPSET:
            raise ValueError(f"{SET_ID} record {number}: {STARS} {stars} is not 1-5")
        text = common.clean(record.get("review_text") or "")
        if text and is_estonian(text):
            yield common.make_row(
                text, "et", {"upset": UPSET[stars]}, SET_ID, common.hash_split(text), DOMAIN
            )


def estonian_detector() -> Callable[[str], bool]:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(CANDIDATES)
    return lambda text: identifier.classify(text)[0] == "et"


def main() -> None:
    args = common.arguments(__doc__ or SET_ID)
    raw = common.git_show(REPO, COMMIT, PATH, args.mirror_root).decode("utf-8")
    common.write_set(SET_ID, parse(raw, estonian_detector()), args.limit)


if __name__ == "__main__":
    main()
