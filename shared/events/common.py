"""Vocabulary shared by several event schemas."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Channel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CHAT = "chat"
    WEB = "web"
    SOCIAL = "social"
    REVIEW = "review"
    SURVEY = "survey"
    CRM = "crm"


class Category(StrEnum):
    DEFECTIVE_PRODUCT = "defective_product"
    OUT_OF_STOCK = "out_of_stock"
    DELIVERY = "delivery"
    BILLING_REFUND = "billing_refund"
    STAFF_BEHAVIOUR = "staff_behaviour"
    LACK_OF_FOLLOW_UP = "lack_of_follow_up"
    ACCOUNT_ACCESS = "account_access"
    OTHER = "other"


class CustomerProfile(StrEnum):
    LEGITIMATELY_UNHAPPY = "legitimately_unhappy"
    PUBLIC_LEVERAGE = "public_leverage"
    LITIGANT = "litigant"
    TROLL = "troll"
    FREEBIE_SEEKER = "freebie_seeker"
    ABUSIVE = "abusive"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class CaseStatus(StrEnum):
    OPEN = "open"  # received, not yet assigned
    QUEUED = "queued"  # waiting for a free, fitting person
    ASSIGNED = "assigned"
    RESOLVED = "resolved"  # fixed, satisfaction check pending
    CLOSED = "closed"
    REOPENED = "reopened"


UtcDatetime = Annotated[datetime, AwareDatetime]


class EventModel(BaseModel):
    """Base of every event payload: strict about unknown fields, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=False, use_enum_values=False)


ShortText = Annotated[str, Field(max_length=200)]
