"""The real-format fixtures of every channel, with their ``ce_sourceformat``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from services.ingest.adapters import IntakeMeta

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ingest"

# fixture file -> (sourceformat, content type)
CHANNEL_FIXTURES: dict[str, tuple[str, str]] = {
    "email_multipart.eml": ("email", "message/rfc822"),
    "email_html_only.eml": ("email", "message/rfc822"),
    "phone_amazon_connect.json": ("phone", "application/json"),
    "phone_call_record.json": ("phone", "application/json"),
    "chat_intercom.json": ("chat", "application/json"),
    "chatbot_transcript.json": ("chatbot", "application/json"),
    "webform_urlencoded.txt": ("webform", "application/x-www-form-urlencoded"),
    "webform_ticket.json": ("webform", "application/json"),
    "webform_cfpb.json": ("webform", "application/json"),
    "twitter_v2_tweet.json": ("twitter", "application/json"),
    "twitter_dm_event.json": ("twitter", "application/json"),
    "facebook_page_comment.json": ("facebook", "application/json"),
    "facebook_messenger.json": ("facebook", "application/json"),
    "instagram_comment.json": ("instagram", "application/json"),
    "youtube_comment_thread.json": ("youtube", "application/json"),
    "google_business_review.json": ("google_business", "application/json"),
    "yelp_review.json": ("yelp", "application/json"),
    "trustpilot_webhook.json": ("trustpilot", "application/json"),
    "trustpilot_praise.json": ("trustpilot", "application/json"),
    "glassdoor_review.json": ("glassdoor", "application/json"),
    "angi_review.json": ("angi", "application/json"),
    "consumeraffairs_review.json": ("consumeraffairs", "application/json"),
    "app_store_review.json": ("app_store", "application/json"),
    "google_play_review.json": ("google_play", "application/json"),
    "survey_delighted_nps.json": ("survey", "application/json"),
    "survey_csat_praise.json": ("survey", "application/json"),
    "salesforce_case_cdc.json": ("salesforce", "application/json"),
    "salesforce_platform_event.json": ("salesforce", "application/json"),
    "zendesk_ticket_created.json": ("zendesk", "application/json"),
    "zendesk_comment_added.json": ("zendesk", "application/json"),
    "hubspot_webhook_batch.json": ("hubspot", "application/json"),
    "hubspot_ticket_object.json": ("hubspot", "application/json"),
    "cloudevents_structured.json": ("cloudevents", "application/cloudevents+json"),
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def meta(source_format: str, content_type: str | None = None) -> IntakeMeta:
    return IntakeMeta(
        source_format=source_format,
        event_id="intake-test-1",
        event_time=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        content_type=content_type,
    )
