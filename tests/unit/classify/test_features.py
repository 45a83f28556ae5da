"""Hashed features: the language-conjoined copies (``conjoin=True``) of features.py."""

from __future__ import annotations

import numpy as np

from services.classify.text.features import featurise, language_bucket

TEXTS = ["This is the worst service ever", "Tämä on huonoin palvelu ikinä", ""]


def test_conjoin_adds_one_language_copy_of_every_feature_but_the_bias() -> None:
    plain = featurise(TEXTS, ["en", "fi", "en"], bits=20)
    both = featurise(TEXTS, ["en", "fi", "en"], bits=20, conjoin=True)
    shared = len(plain.rows) - len(TEXTS)
    assert len(both.rows) == len(plain.rows) + shared
    assert np.array_equal(both.buckets[: len(plain.rows)], plain.buckets)
    assert np.array_equal(both.scale, plain.scale)  # scale counts each occurrence once


def test_conjoined_copies_depend_on_the_language_shared_ones_do_not() -> None:
    en = featurise(TEXTS[:1], ["en"], bits=20, conjoin=True)
    fi = featurise(TEXTS[:1], ["fi"], bits=20, conjoin=True)
    shared = len(en.rows) // 2  # the n-gram and word features, before the language bias
    assert np.array_equal(en.buckets[:shared], fi.buckets[:shared])
    assert not np.array_equal(en.buckets[shared + 1 :], fi.buckets[shared + 1 :])


def test_language_bucket_is_the_bias_feature() -> None:
    batch = featurise(TEXTS[:1], ["tr"], bits=19)
    assert batch.buckets[-1] == language_bucket("tr", 19)
