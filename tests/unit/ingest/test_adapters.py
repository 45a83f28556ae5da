"""Every channel's real-format fixture becomes the expected canonical contact."""

from __future__ import annotations

import pytest

from services.ingest.adapters import ADAPTERS, adapter_for, split_batch
from services.ingest.adapters.email import strip_reply
from shared.events.common import Channel
from shared.service import Rejected

from .fixtures import CHANNEL_FIXTURES, fixture, meta


def adapt(name: str):
    source_format, content_type = CHANNEL_FIXTURES[name]
    contact = adapter_for(source_format)(fixture(name), meta(source_format, content_type))
    assert contact is not None
    return contact


@pytest.mark.parametrize("name", sorted(CHANNEL_FIXTURES))
def test_every_fixture_normalises(name: str) -> None:
    contact = adapt(name)
    assert contact.text or contact.rating is not None
    assert contact.contact_id and contact.intake_event_id == "intake-test-1"
    assert contact.received_at.tzinfo is not None
    assert contact.external_ids


def test_every_registered_source_has_a_fixture() -> None:
    covered = {fmt for fmt, _ in CHANNEL_FIXTURES.values()}
    assert covered == set(ADAPTERS)


def test_email_multipart_quoted_reply_signature_threading() -> None:
    contact = adapt("email_multipart.eml")
    assert contact.channel is Channel.EMAIL and not contact.public
    assert contact.subject == "Re: Tilaus 10452 ei ole vielä saapunut"  # RFC 2047 decoded
    assert contact.author.email == "maija.virtanen@example.fi"
    assert contact.author.name == "Maija Virtanen"
    assert "haluan rahani takaisin" in contact.text
    assert "Kiitos tilauksestasi" not in contact.text  # quoted reply stripped
    assert "+358 40 123 4567" not in contact.text  # signature stripped
    assert contact.attachments[0].filename == "kuitti.jpg"
    assert contact.attachments[0].content_type == "image/jpeg"
    assert contact.thread.in_reply_to == "<20261120.ack.10452@shop.example>"
    assert contact.thread.references[0] == "<CAF3x9Q1-first-1@mail.example.fi>"
    assert contact.external_ids["email"] == "<CAF3x9Q2-reply-2@mail.example.fi>"
    assert contact.received_at.isoformat() == "2026-11-24T06:15:00+00:00"


def test_email_html_only_and_latin1() -> None:
    contact = adapt("email_html_only.eml")
    assert contact.subject == "Colis endommagé"
    assert "cafetière ne fonctionne pas" in contact.text
    assert "color" not in contact.text and "<p>" not in contact.text
    assert "iPhone" not in contact.text


@pytest.mark.parametrize(
    ("reply", "kept", "dropped"),
    [
        ("Still broken.\n\nOn Mon, 1 Jan 2026 Support <s@x> wrote:\n> old", "Still broken.", "old"),
        ("Immer noch kaputt.\n\nAm 1.1.2026 schrieb Support <s@x>:\n> alt", "kaputt", "alt"),
        ("Toujours cassé.\n-----Original Message-----\nFrom: x", "cassé", "From"),
        ("Ei toimi.\n\nLähetetty iPhonesta", "Ei toimi.", "iPhonesta"),
    ],
)
def test_strip_reply(reply: str, kept: str, dropped: str) -> None:
    text = strip_reply(reply)
    assert kept in text and dropped not in text


def test_phone_records_normalise_caller_to_e164() -> None:
    connect = adapt("phone_amazon_connect.json")
    assert connect.channel is Channel.PHONE
    assert connect.author.phone == "+4915123456789"
    assert "zweimal abgebucht" in connect.text and "wie kann ich helfen" not in connect.text
    record = adapt("phone_call_record.json")
    assert record.author.phone == "+358401234567"  # national format, default region FI
    assert "Asiakaspalvelu, Pekka" not in record.text


def test_chat_keeps_only_customer_turns() -> None:
    intercom = adapt("chat_intercom.json")
    assert "terkunci" in intercom.text and "reset kata sandi" not in intercom.text
    assert intercom.author.email == "siti.rahma@example.co.id"
    bot = adapt("chatbot_transcript.json")
    assert bot.platform == "chatbot"
    assert "temsilciyle" in bot.text and "Merhaba" not in bot.text
    assert bot.author.phone == "+905321234567"


def test_webforms() -> None:
    form = adapt("webform_urlencoded.txt")
    assert form.channel is Channel.WEB
    assert form.author.email == "laura.garcia@example.es" and form.author.phone == "+34612345678"
    assert form.external_ids["order"] == "A-99812"
    ticket = adapt("webform_ticket.json")
    assert ticket.subject == "Arve viga" and ticket.author.name == "Kadri Tamm"


def test_social_posts_are_public_with_reach_and_dms_private() -> None:
    tweet = adapt("twitter_v2_tweet.json")
    assert tweet.public and tweet.reach == 48210 and tweet.author.handle == "twitter:@annaberg"
    assert tweet.url == "https://x.com/annaberg/status/1861234567890123456"
    dm = adapt("twitter_dm_event.json")
    assert not dm.public and dm.author.handle == "twitter:@annaberg"
    comment = adapt("facebook_page_comment.json")
    assert comment.public and comment.author.name == "Carlos Ruiz"
    assert comment.url == "https://www.facebook.com/shopexample/posts/pfbid02abc"
    messenger = adapt("facebook_messenger.json")
    assert not messenger.public and messenger.author.handle == "facebook:6543210987654321"
    insta = adapt("instagram_comment.json")
    assert insta.public and insta.author.handle == "instagram:@rizky.pratama"
    youtube = adapt("youtube_comment_thread.json")
    assert youtube.public and '"burned out"' in youtube.text


def test_reviews_carry_rating_and_praise() -> None:
    assert adapt("google_business_review.json").rating == 1.0
    assert adapt("yelp_review.json").rating == 2.0
    assert adapt("trustpilot_webhook.json").subject == "Nie wieder"
    praise = adapt("trustpilot_praise.json")
    assert praise.kind == "praise" and praise.rating == 5.0
    assert adapt("glassdoor_review.json").text.startswith("Cons:")
    assert adapt("angi_review.json").rating == 1.0
    assert adapt("consumeraffairs_review.json").channel is Channel.REVIEW
    assert adapt("app_store_review.json").subject == "Sovellus kaatuu maksaessa"
    play = adapt("google_play_review.json")
    assert play.rating == 1.0 and "\u200c" in play.text  # Persian ZWNJ kept


def test_surveys_detractor_is_complaint_promoter_is_praise() -> None:
    nps = adapt("survey_delighted_nps.json")
    assert nps.kind == "complaint" and nps.survey is not None
    assert (nps.survey.kind, nps.survey.score, nps.survey.scale_max) == ("nps", 2, 10)
    csat = adapt("survey_csat_praise.json")
    assert csat.kind == "praise" and csat.survey is not None and csat.survey.kind == "csat"


def test_crm_sources() -> None:
    sf = adapt("salesforce_case_cdc.json")
    assert sf.channel is Channel.EMAIL and sf.author.crm_id == "salesforce:0033000000abcDEAA1"
    assert (
        sf.author.customer_tier == "gold" and sf.external_ids["salesforce"] == "5003000000D8cuIAAR"
    )
    pe = adapt("salesforce_platform_event.json")
    assert pe.channel is Channel.PHONE and pe.author.email == "tom.baker@example.co.uk"
    zd = adapt("zendesk_ticket_created.json")
    assert zd.author.crm_id == "zendesk:8447388090495" and zd.author.customer_tier == "vip"
    comment = adapt("zendesk_comment_added.json")
    assert comment.thread.conversation_id == zd.thread.conversation_id
    hs = adapt("hubspot_webhook_batch.json")
    assert hs.channel is Channel.PHONE and hs.author.email == "jean.dupont@example.fr"
    hs_obj = adapt("hubspot_ticket_object.json")
    assert hs_obj.text == "The lamp arrived in pieces. I need a replacement before Friday."
    ce = adapt("cloudevents_structured.json")
    assert ce.author.crm_id == "freshdesk:5512" and ce.channel is Channel.EMAIL


def test_non_complaint_events_are_ignored() -> None:
    staff = fixture("zendesk_comment_added.json").replace(b'"is_staff": false', b'"is_staff": true')
    assert adapter_for("zendesk")(staff, meta("zendesk")) is None
    status = b'{"type": "zen:event-type:ticket.status_changed", "detail": {"id": "1"}}'
    assert adapter_for("zendesk")(status, meta("zendesk")) is None


@pytest.mark.parametrize(
    ("source", "payload", "reason"),
    [
        ("email", fixture("email_malformed.bin"), "unparseable_mime"),
        ("email", b"", "unparseable_mime"),
        ("yelp", b'{"id": "x", "rating": 2}', "missing_field"),
        ("yelp", b'{"id": "x", "rating": 9, "text": "bad"}', "invalid_field"),
        ("twitter", b"\xff\xfe{}", "bad_encoding"),
        ("survey", b'{"kind": "nps", "response_id": "r", "score": 11}', "invalid_field"),
        ("trustpilot", b"[1, 2", "invalid_json"),
        ("nosuch", b"{}", "unknown_source"),
    ],
)
def test_malformed_inputs_are_rejected_with_a_reason(
    source: str, payload: bytes, reason: str
) -> None:
    with pytest.raises(Rejected) as caught:
        adapter_for(source)(payload, meta(source))
    assert caught.value.reason == reason


def test_split_batch() -> None:
    assert len(split_batch("hubspot", fixture("hubspot_webhook_batch.json"))) == 1
    two = fixture("facebook_page_comment.json").replace(
        b'"changes": [', b'"changes": [{"field": "feed", "value": {"item": "like"}},'
    )
    parts = split_batch("facebook", two)
    assert len(parts) == 2
    assert adapter_for("facebook")(parts[0], meta("facebook")) is None
    assert adapter_for("facebook")(parts[1], meta("facebook")) is not None


@pytest.mark.parametrize(
    ("name", "product", "region"),
    [
        ("salesforce_platform_event.json", "WM-800 washer", "GB-LND"),  # Product__c, Region__c
        ("salesforce_case_cdc.json", None, "ID"),  # no region field: the phone's country
        ("hubspot_ticket_object.json", "Aurora desk lamp", "IE"),  # product, country
        ("webform_cfpb.json", "Credit card", "CA"),  # CFPB-style Product and State
        ("webform_urlencoded.txt", None, "ES"),  # +34 phone
        ("app_store_review.json", None, "FIN"),  # territory
        ("phone_call_record.json", None, "FI"),
        ("email_multipart.eml", None, None),  # an email says neither
        ("yelp_review.json", None, None),
    ],
)
def test_product_and_region_only_where_the_payload_carries_them(
    name: str, product: str | None, region: str | None
) -> None:
    contact = adapt(name)
    assert (contact.product, contact.region) == (product, region)


def test_region_from_the_phone_only_as_a_fallback() -> None:
    from services.ingest.adapters.base import phone_country

    assert phone_country("+358401234567") == "FI"
    assert phone_country("+12025550123") == "US"
    assert phone_country(None) is None and phone_country("not a number") is None
    raw = b"message=Broken&phone=%2B4915112345678&country=AT&submission_id=x1"
    contact = adapter_for("webform")(raw, meta("webform", "application/x-www-form-urlencoded"))
    assert contact is not None and contact.region == "AT"  # the form's own field wins


def test_a_few_invalid_bytes_are_replaced_and_the_contact_goes_on() -> None:
    # "beschädigt" with the ä in Latin-1 (one byte, invalid UTF-8) inside a UTF-8 review.
    raw = fixture("trustpilot_webhook.json").replace("beschädigt".encode(), b"besch\xe4digt")
    contact = adapter_for("trustpilot")(raw, meta("trustpilot"))
    assert contact is not None and "besch\ufffddigt" in (contact.text or "")
    # Classify reads it, scores it, and says why it is less sure (tests/unit/classify).
    from services.classify.scoring import text_signals
    from services.classify.text.model import default_model

    signal = text_signals(default_model(), [contact.text or ""], ["de"])[0]
    assert any("undecodable" in reason for reason in signal.doubts)


def test_mostly_invalid_bytes_are_bad_encoding() -> None:
    raw = b'{"data": {"id": "1", "text": "caf\xe9 \xff\xfe"}}'
    with pytest.raises(Rejected) as caught:
        adapter_for("twitter")(raw, meta("twitter"))
    assert caught.value.reason == "bad_encoding"
