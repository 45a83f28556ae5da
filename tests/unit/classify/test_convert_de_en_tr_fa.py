# ruff: noqa: RUF001  (Turkish and Persian sample lines in the raw formats)
"""Each de/en/tr/fa converter's parser on a few lines typed in its source's raw format.

The samples are written here by hand (not copied from the sets), so a parsing bug shows
without the fetched mirrors. The manifest tests check every ``sets/*.yaml`` entry and
that ``DATA.md`` is the rendering of them.
"""

from __future__ import annotations

import importlib
import io
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from services.classify.training import data_manifest
from services.classify.training.convert import (
    common,
    de_germeval17,
    de_germeval17_dia,
    de_germeval18_offensive,
    de_hotel_absa,
    en_airline_tweets,
    en_apple_tweets,
    en_chatgpt_app_reviews,
    en_complaint_tweets,
    en_uci_reviews,
    fa_parsoffensive,
    fa_sentipers,
    fa_snappfood,
    language_filter,
    offenseval,
    tr_product_reviews,
    tr_store_reviews,
    tr_turkcell_tweets,
)


def _pairs(rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, int]]]:
    return [(row["text"], row["labels"]) for row in rows]


def test_airline_tweets_negative_is_upset_neutral_and_positive_are_not() -> None:
    raw = (
        "tweet_id,airline_sentiment,airline_sentiment_confidence,negativereason,airline,text\n"
        '1,negative,1.0,Late Flight,Delta,"@Delta two hours on the tarmac, again"\n'
        "2,neutral,0.7,,Delta,@Delta do you fly to Boise?\n"
        "3,positive,1.0,,United,@united thanks for the upgrade!\n"
    )
    rows = list(en_airline_tweets.parse(raw))
    assert _pairs(rows) == [
        ("@Delta two hours on the tarmac, again", {"upset": 1}),
        ("@Delta do you fly to Boise?", {"upset": 0}),
        ("@united thanks for the upgrade!", {"upset": 0}),
    ]
    assert {r["language"] for r in rows} == {"en"}
    assert {r["split"] for r in rows} <= {"train", "valid", "test"}


def test_airline_tweets_rejects_an_unknown_label() -> None:
    raw = "airline_sentiment,text\nangry,@Delta where is my bag\n"
    with pytest.raises(ValueError, match="unknown label"):
        list(en_airline_tweets.parse(raw))


def test_germeval17_keeps_relevant_posts_and_unquotes_csv_style_text() -> None:
    raw = (
        "http://twitter.com/a/1\t@DB_Bahn Zug fällt schon wieder aus\ttrue\tnegative\t"
        "Allgemein#Haupt:negative\n"
        'http://x.de/2\t"Er sagte ""pünktlich"" und lachte"\ttrue\tneutral\n'
        "http://x.de/3\tBörsenkurse heute im Überblick\tfalse\tneutral\n"
        "http://twitter.com/a/4\tDanke für die schnelle Hilfe am Schalter\ttrue\tpositive\n"
    )
    rows = list(de_germeval17.parse(raw))
    assert _pairs(rows) == [
        ("@DB_Bahn Zug fällt schon wieder aus", {"upset": 1}),
        ('Er sagte "pünktlich" und lachte', {"upset": 0}),
        ("Danke für die schnelle Hilfe am Schalter", {"upset": 0}),
    ]


def test_germeval17_takes_the_official_split_when_given() -> None:
    raw = "http://x/1\t@DB_Bahn Klimaanlage kaputt\ttrue\tnegative\n"
    assert [r["split"] for r in de_germeval17.parse(raw, "test")] == ["test"]


def test_germeval17_rejects_a_line_without_sentiment() -> None:
    with pytest.raises(ValueError, match="line 1"):
        list(de_germeval17.parse("http://x\tnur Text\n"))


def test_germeval17_dia_reads_the_xml_documents_and_drops_irrelevant_ones() -> None:
    raw = (
        "<Documents>\n"
        '  <Document id="http://twitter.com/a/1">\n'
        '    <Opinions><Opinion category="Zugfahrt#Haupt" polarity="negative" /></Opinions>\n'
        "    <relevance>true</relevance><sentiment>negative</sentiment>\n"
        "    <text>Zug steht seit 40 Minuten vor K&#246;ln &amp; keiner sagt was</text>\n"
        "  </Document>\n"
        '  <Document id="http://x.de/2">\n'
        "    <relevance>false</relevance><sentiment>neutral</sentiment>\n"
        "    <text>Modelleisenbahn zu verkaufen</text>\n"
        "  </Document>\n"
        '  <Document id="http://twitter.com/a/3">\n'
        "    <relevance>true</relevance><sentiment>positive</sentiment>\n"
        "    <text>Danke an die Zugbegleiterin im ICE nach Hamburg!</text>\n"
        "  </Document>\n"
        "</Documents>\n"
    )
    rows = list(de_germeval17_dia.parse(raw))
    assert _pairs(rows) == [
        ("Zug steht seit 40 Minuten vor Köln & keiner sagt was", {"upset": 1}),
        ("Danke an die Zugbegleiterin im ICE nach Hamburg!", {"upset": 0}),
    ]
    assert {(r["language"], r["domain"], r["source"]) for r in rows} == {
        ("de", "service_tweets", "de_germeval17_dia")
    }


def test_germeval17_dia_rejects_a_document_without_sentiment() -> None:
    raw = "<Documents><Document><relevance>true</relevance><text>x</text></Document></Documents>"
    with pytest.raises(ValueError, match="document 1"):
        list(de_germeval17_dia.parse(raw))


def test_hotel_absa_any_negative_aspect_is_upset() -> None:
    raw = (
        "__label__ZIMMER:negativ\tDas Zimmer war laut.\n"
        "__label__SERVICE:positiv __label__ZIMMER:negativ\tNettes Personal, aber kalte Dusche.\n"
        "__label__HOTEL:neutral\tAlles soweit ok.\n"
    )
    rows = list(de_hotel_absa.parse(raw, "valid"))
    assert _pairs(rows) == [
        ("Das Zimmer war laut.", {"upset": 1}),
        ("Nettes Personal, aber kalte Dusche.", {"upset": 1}),
        ("Alles soweit ok.", {"upset": 0}),
    ]
    assert {r["split"] for r in rows} == {"valid"}


def test_hotel_absa_rejects_an_unknown_polarity() -> None:
    with pytest.raises(ValueError, match="line 1"):
        list(de_hotel_absa.parse("__label__HOTEL:gemischt\tNaja.\n", "train"))


def test_germeval18_offense_is_abusive_and_line_breaks_come_back() -> None:
    raw = (
        "@user Ihr seid doch alle Idioten\tOFFENSE\tINSULT\n"
        "Schönen Sonntag euch!|LBR|Bis morgen\tOTHER\tOTHER\n"
    )
    rows = list(de_germeval18_offensive.parse(raw, "test"))
    assert _pairs(rows) == [
        ("@user Ihr seid doch alle Idioten", {"abusive": 1}),
        ("Schönen Sonntag euch!\nBis morgen", {"abusive": 0}),
    ]
    assert {r["split"] for r in rows} == {"test"}
    train = list(de_germeval18_offensive.parse(raw, "train"))
    assert {r["split"] for r in train} <= {"train", "valid"}


def test_uci_reviews_zero_is_upset_and_domain_follows_the_file() -> None:
    raw = "Battery died after two days.\t0\r\nGreat sound, fits well.\t1\n"
    rows = list(en_uci_reviews.parse(raw, "product_reviews"))
    assert _pairs(rows) == [
        ("Battery died after two days.", {"upset": 1}),
        ("Great sound, fits well.", {"upset": 0}),
    ]
    assert {r["domain"] for r in rows} == {"product_reviews"}
    with pytest.raises(ValueError, match="line 1"):
        list(en_uci_reviews.parse("no label here\n", "restaurant_reviews"))


def test_offenseval_training_and_test_join_gold_labels_by_id() -> None:
    training = (
        "id\ttweet\tsubtask_a\tsubtask_b\n"
        "1\t@USER you are a clown\tOFF\tTIN\n"
        "2\tnice day\tNOT\tNULL\n"
    )
    assert _pairs(list(offenseval.parse_training(training, "x", "en"))) == [
        ("@USER you are a clown", {"abusive": 1}),
        ("nice day", {"abusive": 0}),
    ]
    numeric = "id\ttweet\tsubtask_a\n7\t@USER çok güzel\t0\n8\t@USER salak mısın\t1\n"
    assert [r["labels"] for r in offenseval.parse_training(numeric, "x", "tr")] == [
        {"abusive": 0},
        {"abusive": 1},
    ]
    tweets = 'id\ttweet\n10\tthis "thing" is fine\n11\tshut up idiot\n'
    rows = list(offenseval.parse_test(tweets, "10,NOT\n11,OFF\n", "x", "en"))
    assert _pairs(rows) == [
        ('this "thing" is fine', {"abusive": 0}),
        ("shut up idiot", {"abusive": 1}),
    ]
    assert {r["split"] for r in rows} == {"test"}


def test_offenseval_test_tweet_without_gold_label_is_an_error() -> None:
    with pytest.raises(ValueError, match="no gold label"):
        list(offenseval.parse_test("id\ttweet\n5\thello\n", "6,NOT\n", "x", "en"))
    with pytest.raises(ValueError, match="OFF/NOT"):
        list(offenseval.parse_training("id\ttweet\tsubtask_a\n1\thi\tMAYBE\n", "x", "en"))


def test_store_reviews_olumsuz_is_upset_and_br_tags_become_line_breaks() -> None:
    raw = (
        "Görüş,Durum\n"
        '"Kargo geç geldi, kutu ezikti",Olumsuz\n'
        "Fiyatına göre iyi<br />Tavsiye ederim,Olumlu\n"
        "Güzel ama rengi farklı,Tarafsız\n"
    )
    rows = list(tr_store_reviews.parse(raw))
    assert _pairs(rows) == [
        ("Kargo geç geldi, kutu ezikti", {"upset": 1}),
        ("Fiyatına göre iyi\nTavsiye ederim", {"upset": 0}),
        ("Güzel ama rengi farklı", {"upset": 0}),
    ]
    with pytest.raises(ValueError, match="record 2"):
        list(tr_store_reviews.parse("Görüş,Durum\nidare eder,Belki\n"))


def _targz(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_product_reviews_read_both_members_of_the_archive() -> None:
    archive = _targz(
        {
            "reviews/reviews.pos": "çok kaliteli bir ürün\nhızlı kargo teşekkürler\n",
            "reviews/reviews.neg": "iki günde bozuldu\n",
        }
    )
    assert sorted(_pairs(list(tr_product_reviews.parse(archive)))) == [
        ("hızlı kargo teşekkürler", {"upset": 0}),
        ("iki günde bozuldu", {"upset": 1}),
        ("çok kaliteli bir ürün", {"upset": 0}),
    ]
    with pytest.raises(ValueError, match=r"lacks reviews\.neg"):
        list(tr_product_reviews.parse(_targz({"reviews.pos": "iyi\n"})))


def test_turkcell_tweets_read_semicolon_lines_with_quoted_line_breaks() -> None:
    raw = (
        "turkcell yine paketimi yeniledi;olumsuz\n"
        '"hediye internet geldi\nteşekkürler turkcell";olumlu\n'
        ";\n"
        "Turkcell 2017 bilançosunu açıkladı;notr\n"
    )
    rows = list(tr_turkcell_tweets.parse(raw, "test"))
    assert _pairs(rows) == [
        ("turkcell yine paketimi yeniledi", {"upset": 1}),
        ("hediye internet geldi\nteşekkürler turkcell", {"upset": 0}),
        ("Turkcell 2017 bilançosunu açıkladı", {"upset": 0}),
    ]
    assert {r["split"] for r in rows} == {"test"}
    with pytest.raises(ValueError, match="record 1"):
        list(tr_turkcell_tweets.parse("metin;kizgin\n", "train"))


def test_sentipers_negative_polarities_are_upset() -> None:
    raw = '"گوشی خیلی کند است","-2"\n"باتری ضعیفه","-1"\n"مشخصات فنی","0"\n"عالیه","2"\n'
    rows = list(fa_sentipers.parse(raw, "test"))
    assert [r["labels"]["upset"] for r in rows] == [1, 1, 0, 0]
    assert rows[0]["text"] == "گوشی خیلی کند است"
    with pytest.raises(ValueError, match="record 1"):
        list(fa_sentipers.parse('"بدون برچسب"\n', "train"))


def test_snappfood_sad_is_upset() -> None:
    raw = 'comment,label\nغذا سرد رسید,SAD\n"خوشمزه بود، ممنون",HAPPY\n'
    assert _pairs(list(fa_snappfood.parse(raw))) == [
        ("غذا سرد رسید", {"upset": 1}),
        ("خوشمزه بود، ممنون", {"upset": 0}),
    ]
    assert {r["split"] for r in fa_snappfood.parse(raw, "valid")} == {"valid"}
    with pytest.raises(ValueError, match="record 2"):
        list(fa_snappfood.parse("comment,label\nمعمولی,OK\n"))


def test_apple_tweets_map_1_to_upset_drop_not_relevant_and_unescape() -> None:
    raw = (
        "_unit_id,_golden,sentiment,sentiment:confidence,date,id,query,sentiment_gold,text\n"
        '1,FALSE,1,1,d,5.4E+17,#AAPL OR @Apple,,"@apple my screen cracked &amp; no one helps"\n'
        "2,FALSE,not_relevant,1,d,5.4E+17,#AAPL OR @Apple,,lunch time\n"
        "3,FALSE,3,0.6,d,5.4E+17,#AAPL OR @Apple,,#AAPL closes flat\n"
        "4,FALSE,5,1,d,5.4E+17,#AAPL OR @Apple,,love my new mac @apple\n"
    )
    assert _pairs(list(en_apple_tweets.parse(raw))) == [
        ("@apple my screen cracked & no one helps", {"upset": 1}),
        ("#AAPL closes flat", {"upset": 0}),
        ("love my new mac @apple", {"upset": 0}),
    ]
    with pytest.raises(ValueError, match="record 2"):
        list(en_apple_tweets.parse("sentiment,text\n4,meh\n"))


def test_complaint_tweets_keep_the_label_and_mark_random_tweets() -> None:
    raw = (
        "101,@AcmeHelp my order never arrived,1,retail\n"
        '102,"@AcmeHelp hi, do you ship to Oslo?",0,retail\n'
        "103,watching the game tonight,0,random_tweet\n"
    )
    rows = list(en_complaint_tweets.parse(raw))
    assert _pairs(rows) == [
        ("@AcmeHelp my order never arrived", {"upset": 1}),
        ("@AcmeHelp hi, do you ship to Oslo?", {"upset": 0}),
        ("watching the game tonight", {"upset": 0}),
    ]
    assert [r["domain"] for r in rows] == ["service_tweets", "service_tweets", "general_tweets"]
    with pytest.raises(ValueError, match="record 1"):
        list(en_complaint_tweets.parse("104,text,maybe,retail\n"))


def test_chatgpt_app_reviews_join_title_and_body_and_drop_three_stars() -> None:
    raw = (
        "date,title,review,rating\n"
        '2023-05-20,Crashes,"Crashes on launch,\nevery time",1\n'
        "2023-05-21,Fine,It is ok I guess,3\n"
        "2023-05-22,Love it,Answers in seconds,5\n"
    )
    assert _pairs(list(en_chatgpt_app_reviews.parse(raw))) == [
        ("Crashes\nCrashes on launch,\nevery time", {"upset": 1}),
        ("Love it\nAnswers in seconds", {"upset": 0}),
    ]
    with pytest.raises(ValueError, match="record 2"):
        list(en_chatgpt_app_reviews.parse("date,title,review,rating\nx,y,z,7\n"))


def test_language_filter_drops_only_text_plainly_in_another_language() -> None:
    rows = [
        {"text": text, "language": lang}
        for text, lang in [
            ("The app keeps logging me out and support never answers.", "en"),
            ("这个应用程序很好用，但是不能在平板电脑上使用。", "en"),
            ("Ok", "en"),
            ("غذا سرد رسید و دیر آوردند", "fa"),
            ("Die Lieferung kam zwei Wochen zu spät und der Karton war beschädigt.", "en"),
        ]
    ]
    kept = [row["text"] for row in language_filter.keep_language(rows, "x")]
    assert kept == [
        "The app keeps logging me out and support never answers.",
        "Ok",
        "غذا سرد رسید و دیر آوردند",
    ]


def _xlsx(rows: list[list[str | None]]) -> bytes:
    """A minimal workbook: shared strings, one sheet; ``None`` leaves the cell out."""
    strings: list[str] = []
    sheet_rows = []
    for number, row in enumerate(rows, 1):
        cells = []
        for column, value in zip("AB", row, strict=False):
            if value is None:
                continue
            strings.append(value)
            cells.append(f'<c r="{column}{number}" t="s"><v>{len(strings) - 1}</v></c>')
        sheet_rows.append(f'<row r="{number}">{"".join(cells)}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    shared = "".join(f"<si><t>{text}</t></si>" for text in strings)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/sharedStrings.xml", f"<sst {ns}>{shared}</sst>")
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            f"<worksheet {ns}><sheetData>{''.join(sheet_rows)}</sheetData></worksheet>",
        )
    return buffer.getvalue()


def test_parsoffensive_reads_the_sheet_and_keeps_blank_cells_in_place() -> None:
    workbook = _xlsx(
        [
            ["comment", "label"],
            ["خفه شو احمق", "Offensive"],
            [None, "Neutral"],
            ["روز خوبی بود", "Neutral"],
        ]
    )
    records = list(fa_parsoffensive.sheet_rows(workbook))
    assert records[2] == ["", "Neutral"]
    rows = [r for r in fa_parsoffensive.parse(iter(records)) if r["text"]]
    assert _pairs(rows) == [("خفه شو احمق", {"abusive": 1}), ("روز خوبی بود", {"abusive": 0})]
    with pytest.raises(ValueError, match="row 2"):
        list(fa_parsoffensive.parse(iter([["comment", "label"], ["متن", "Maybe"]])))


def test_official_or_pooled_uses_the_official_train_file_only_when_present(tmp_path: Path) -> None:
    def parse(raw: str, split: str | None) -> list[dict[str, Any]]:
        return [{"text": line, "split": split or common.hash_split(line)} for line in raw.split()]

    pooled = common.official_or_pooled(parse, "a b", "c", tmp_path / "train.tsv")
    assert [r["text"] for r in pooled] == ["a", "b", "c"]
    assert [r["split"] for r in pooled] == [common.hash_split(t) for t in "abc"]
    (tmp_path / "train.tsv").write_text("t1 t2", encoding="utf-8")
    official = common.official_or_pooled(parse, "a b", "c", tmp_path / "train.tsv")
    assert [(r["text"], r["split"]) for r in official] == [
        ("t1", "train"),
        ("t2", "train"),
        ("a", "valid"),
        ("b", "valid"),
        ("c", "test"),
    ]


def test_train_or_valid_splits_only_the_train_file() -> None:
    texts = [f"review number {n}" for n in range(200)]
    assert {common.train_or_valid(t, "train") for t in texts} == {"train", "valid"}
    assert {common.train_or_valid(t, "test") for t in texts} == {"test"}


def test_every_manifest_entry_is_complete_and_has_a_converter() -> None:
    entries = data_manifest.load_sets()
    pending = data_manifest.load_sets(data_manifest.PENDING_DIR)
    assert entries
    assert all(entry.get("status") for entry in pending)
    for entry in [*entries, *pending]:
        module = importlib.import_module(f"services.classify.training.convert.{entry['id']}")
        assert entry["id"] == module.SET_ID
        assert entry["id"].startswith(f"{entry['language']}_")
        assert set(entry["rows"]) == {"train", "valid", "test"}
        assert isinstance(entry["redistributable"], bool)
        if not entry.get("status"):  # a converted set names its pinned repo@commit
            assert "@" in entry["source"]


def test_data_md_is_the_rendering_of_the_manifest() -> None:
    expected = data_manifest.render(
        data_manifest.load_sets(), data_manifest.load_sets(data_manifest.PENDING_DIR)
    )
    assert data_manifest.DATA_MD.read_text(encoding="utf-8") == expected, (
        "DATA.md is stale: run python -m services.classify.training.data_manifest"
    )
