"""The canonical complaint: every channel adapter in ingest produces this shape."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Channel, EventModel, UtcDatetime

MAX_TEXT_CHARS = 20_000


class Author(EventModel):
    """Who wrote the complaint, as far as the source tells."""

    name: str | None = None
    email: str | None = None
    phone: str | None = Field(default=None, description="E.164, e.g. +358401234567")
    handle: str | None = Field(default=None, description="platform:handle, e.g. twitter:@ann")
    crm_id: str | None = Field(default=None, description="system:id, e.g. zendesk:12345")
    customer_tier: str | None = Field(default=None, description="CRM value tier: vip, gold...")


class Attachment(EventModel):
    filename: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None


class Thread(EventModel):
    """Links to earlier messages of the same conversation."""

    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    conversation_id: str | None = None


class SurveyAnswer(EventModel):
    kind: Literal["csat", "nps"]
    score: int
    scale_max: int
    comment: str | None = None
    case_id: str | None = Field(default=None, description="Case the survey was sent for.")


class RawRef(EventModel):
    """Where the original bytes are: the intake record they arrived in."""

    topic: str
    partition: int
    offset: int


class Contact(EventModel):
    """One message from a customer on one channel, normalised."""

    contact_id: str = Field(description="Stable id: same source and external id, same id.")
    source: str = Field(description="Adapter that read it: email, zendesk, trustpilot...")
    channel: Channel
    platform: str | None = Field(default=None, description="twitter, yelp, salesforce...")
    kind: Literal["complaint", "praise"] = "complaint"
    subject: str | None = None
    text: str = Field(max_length=MAX_TEXT_CHARS)
    language: str = Field(default="und", description="ISO 639-1 code, 'und' if unknown.")
    language_confidence: float = 0.0
    public: bool = False
    author: Author = Field(default_factory=Author)
    reach: int | None = Field(default=None, description="Followers or audience size.")
    rating: float | None = Field(default=None, description="Star rating given, 1-5.")
    survey: SurveyAnswer | None = None
    received_at: UtcDatetime
    external_ids: dict[str, str] = Field(default_factory=dict)
    attachments: list[Attachment] = Field(default_factory=list)
    thread: Thread = Field(default_factory=Thread)
    raw_ref: RawRef | None = None
    intake_event_id: str | None = Field(
        default=None, description="ce_id of the intake record, for end-to-end accounting."
    )
    url: str | None = Field(default=None, description="Public link, for posts and reviews.")
    product: str | None = Field(
        default=None,
        max_length=200,
        description="Product the complaint is about, when the source carries it.",
    )
    region: str | None = Field(
        default=None,
        max_length=100,
        description="Customer's region or market as the source gives it (a country or state "
        "code or name); else the country of the author's phone number.",
    )
