"""Each fi/et/id converter's parser on a few lines typed in its source's raw format.

The samples are written here by hand (not copied from the sets), so a parsing bug shows
without the fetched mirrors or ../shared/eval.
"""

from __future__ import annotations

import pytest

from services.classify.training.convert import (
    et_dinnerbooking,
    et_valence,
    fi_finnsentiment,
    fi_scandisent,
    fi_suomi24_toxicity,
    id_abusive,
    id_indolem,
    id_prdect,
    id_smsa,
)


def _texts_and_labels(rows: list[dict]) -> list[tuple[str, dict[str, int]]]:
    return [(row["text"], row["labels"]) for row in rows]


def test_smsa_maps_negative_to_upset_and_keeps_the_given_split() -> None:
    raw = (
        "pelayanan lambat sekali , pesanan saya hilang .\tnegative\n"
        "tempat nya nyaman dan makanan enak .\tpositive\n"
        "\n"
        "besok saya ke bandung .\tneutral\n"
    )
    rows = list(id_smsa.parse(raw, "valid"))
    assert _texts_and_labels(rows) == [
        ("pelayanan lambat sekali , pesanan saya hilang .", {"upset": 1}),
        ("tempat nya nyaman dan makanan enak .", {"upset": 0}),
        ("besok saya ke bandung .", {"upset": 0}),
    ]
    assert {row["split"] for row in rows} == {"valid"}
    assert {row["language"] for row in rows} == {"id"}


def test_smsa_rejects_an_unknown_label() -> None:
    with pytest.raises(ValueError, match="line 1"):
        list(id_smsa.parse("teks tanpa label yang benar\tmixed\n", "train"))


def test_prdect_reads_the_review_and_the_human_sentiment() -> None:
    raw = (
        "Category,Product Name,Location,Price,Overall Rating,Number Sold,Total Review,"
        "Customer Rating,Customer Review,Sentiment,Emotion\n"
        'Kitchen,"Panci, 24 cm",Jakarta Barat,99000,4.8,120,80,1,'
        '"Barang datang penyok, penjual tidak membalas chat",Negative,Anger\n'
        "Kitchen,Sendok,Bandung,15000,4.9,300,200,5,Mantap pengiriman cepat,Positive,Happy\n"
    )
    rows = list(id_prdect.parse(raw))
    assert _texts_and_labels(rows) == [
        ("Barang datang penyok, penjual tidak membalas chat", {"upset": 1}),
        ("Mantap pengiriman cepat", {"upset": 0}),
    ]
    assert all(row["split"] in {"train", "valid", "test"} for row in rows)


def test_prdect_rejects_a_missing_sentiment() -> None:
    raw = "Customer Review,Sentiment\nbagus,\n"
    with pytest.raises(ValueError, match="Sentiment"):
        list(id_prdect.parse(raw))


def test_abusive_keeps_the_abusive_column_and_strips_byte_escapes() -> None:
    raw = (
        b"Tweet,HS,Abusive,HS_Individual\n"
        b"USER dasar bego lu \\xf0\\x9f\\x98\\x82',1,1,1\n"
        b"USER selamat pagi semua',0,0,0\n"
    ) + b"USER kopi enak \xf0 sekali',0,0,0\n"
    rows = list(id_abusive.parse(raw))
    assert _texts_and_labels(rows) == [
        ("USER dasar bego lu", {"abusive": 1}),
        ("USER selamat pagi semua", {"abusive": 0}),
        ("USER kopi enak   sekali", {"abusive": 0}),
    ]


def test_abusive_rejects_a_label_that_is_not_binary() -> None:
    with pytest.raises(ValueError, match="record 2"):
        list(id_abusive.parse(b"Tweet,HS,Abusive\nhalo,0,yes\n"))


def test_suomi24_toxicity_maps_one_label_per_comment() -> None:
    raw = (
        "ID  label   text\n"
        "s24:a\tinsult\tOlet ihan idiootti\n"
        "s24:b\tnot-toxicity\tHyvää huomenta kaikille\n"
        "s24:c\tnot-insult\tTämä ei kerro mitään loukkauksesta\n"
        "s24:d\tthreat\tTulen ja hakkaan sinut\n"
        "s24:e\tnot-threat\tMenen huomenna kauppaan\n"
        "s24:f\tnot-threat\tKaksi merkintää samalla kommentilla\n"
        "s24:f\tnot-toxicity\tKaksi merkintää samalla kommentilla\n"
    )
    assert _texts_and_labels(list(fi_suomi24_toxicity.parse(raw))) == [
        ("Olet ihan idiootti", {"abusive": 1}),
        ("Hyvää huomenta kaikille", {"abusive": 0}),
        ("Tulen ja hakkaan sinut", {"abusive": 1, "threat": 1}),
        ("Menen huomenna kauppaan", {"threat": 0}),
        ("Kaksi merkintää samalla kommentilla", {"abusive": 0, "threat": 0}),
    ]


def test_suomi24_toxicity_rejects_an_unknown_label() -> None:
    with pytest.raises(ValueError, match="line 2"):
        list(fi_suomi24_toxicity.parse("ID  label   text\ns24:a\trude\tteksti\n"))


def test_valence_maps_negative_to_upset_and_drops_mixed() -> None:
    raw = (
        'negatiivne,"Teenindus oli aeglane, ootasin tund aega."\n'
        "positiivne,Kõik sujus hästi\n"
        "neutraalne,Pood avatakse kell kümme.\n"
        'vastuoluline,"Hea hind, aga halb kvaliteet"\n'
    )
    assert _texts_and_labels(list(et_valence.parse(raw))) == [
        ("Teenindus oli aeglane, ootasin tund aega.", {"upset": 1}),
        ("Kõik sujus hästi", {"upset": 0}),
        ("Pood avatakse kell kümme.", {"upset": 0}),
    ]


def test_valence_rejects_an_unknown_label() -> None:
    with pytest.raises(ValueError, match="record 1"):
        list(et_valence.parse("vihane,Tekst\n"))


def test_indolem_maps_zero_to_upset_and_keeps_the_split() -> None:
    raw = (
        "sentence,sentiment\n"
        '"kamar kotor, wifi mati, ac tidak dingin",0\n'
        "pelayanan ramah dan kamar bersih,1\n"
    )
    rows = list(id_indolem.parse(raw, "test"))
    assert _texts_and_labels(rows) == [
        ("kamar kotor, wifi mati, ac tidak dingin", {"upset": 1}),
        ("pelayanan ramah dan kamar bersih", {"upset": 0}),
    ]
    assert {row["split"] for row in rows} == {"test"}


def test_indolem_rejects_a_label_that_is_not_binary() -> None:
    with pytest.raises(ValueError, match="record 2"):
        list(id_indolem.parse("sentence,sentiment\nbagus,positive\n", "train"))


def test_scandisent_maps_negative_reviews_to_upset() -> None:
    raw = (
        "text,label\n"
        '"Paketti hukassa, asiakaspalvelu ei vastaa.",0\n'
        "Nopea toimitus ja hyvä hinta.,1\n"
    )
    assert _texts_and_labels(list(fi_scandisent.parse(raw))) == [
        ("Paketti hukassa, asiakaspalvelu ei vastaa.", {"upset": 1}),
        ("Nopea toimitus ja hyvä hinta.", {"upset": 0}),
    ]


def test_scandisent_rejects_a_file_without_the_expected_columns() -> None:
    with pytest.raises(ValueError, match="text,label"):
        list(fi_scandisent.parse("review,stars\nhyvä,5\n"))


def test_finnsentiment_reads_the_majority_column_and_the_last_column() -> None:
    raw = (
        "A\tB\tC\tmajority\tderived\tsplit\ttext\n"
        "-1\t-1\t0\t-1\t2\t3\tTämä palvelu on ihan surkea\n"
        "0\t0\t0\t0\t3\t1\tLähden huomenna töihin\n"
        "\n"
        "1\t1\t0\t1\t4\t2\tKiitos avusta, toimi hyvin\n"
    )
    assert _texts_and_labels(list(fi_finnsentiment.parse(raw))) == [
        ("Tämä palvelu on ihan surkea", {"upset": 1}),
        ("Lähden huomenna töihin", {"upset": 0}),
        ("Kiitos avusta, toimi hyvin", {"upset": 0}),
    ]


def test_finnsentiment_rejects_a_row_without_a_polarity_in_column_four() -> None:
    raw = "-1\t-1\t0\t-1\t2\tteksti\n1\t1\t1\tpositive\t5\tteksti kaksi\n"
    with pytest.raises(ValueError, match="line 2"):
        list(fi_finnsentiment.parse(raw))


DINNERBOOKING_HEADER = (
    "website,restaurant_name,restaurant_href,review_author,review_text,review_rating_total,"
    "review_rating_food,review_rating_service,review_rating_atmosphere,"
    "review_rating_overall_impression,review_rating_price_quality_ratio,review_len,language\n"
)


def test_dinnerbooking_maps_stars_and_drops_three_stars() -> None:
    raw = DINNERBOOKING_HEADER + (
        'DinnerBooking,Resto,/r1,MARI,"Ootasime tund aega, toit oli külm.",1.6,2.0,1.0,3.0,'
        "2.0,1.0,6,et\n"
        "DinnerBooking,Resto,/r1,JAAN,Kõik oli väga hea!,5.0,5.0,5.0,5.0,5.0,5.0,4,et\n"
        "DinnerBooking,Resto,/r1,TIIT,Keskmine kogemus,3.0,3.0,3.0,3.0,3.0,3.0,2,et\n"
    )
    assert _texts_and_labels(list(et_dinnerbooking.parse(raw))) == [
        ("Ootasime tund aega, toit oli külm.", {"upset": 1}),
        ("Kõik oli väga hea!", {"upset": 0}),
    ]


def test_dinnerbooking_language_filter_drops_other_languages() -> None:
    raw = DINNERBOOKING_HEADER + (
        "DinnerBooking,Resto,/r1,MARI,Teenindus oli kohutavalt aeglane,2.0,2.0,1.0,2.0,"
        "1.0,2.0,4,et\n"
        "DinnerBooking,Resto,/r1,MATTI,Palvelu oli todella hidasta ja huonoa,2.0,2.0,1.0,2.0,"
        "1.0,2.0,5,et\n"
    )
    rows = list(et_dinnerbooking.parse(raw, et_dinnerbooking.estonian_detector()))
    assert [row["text"] for row in rows] == ["Teenindus oli kohutavalt aeglane"]


def test_dinnerbooking_rejects_a_missing_rating() -> None:
    with pytest.raises(ValueError, match="record 2"):
        list(et_dinnerbooking.parse("review_text,review_rating_overall_impression\nhea,\n"))
