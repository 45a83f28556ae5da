"""Review sites, with the star rating. Four or five stars are praise, not a complaint.

* Google Business Profile: the v4 ``Review`` resource (``name``, ``reviewId``,
  ``reviewer``, ``starRating`` ONE..FIVE, ``comment``, ``createTime``);
* Yelp: a Fusion API review (``id``, ``rating``, ``text``, ``time_created``, ``user``);
* Trustpilot: the ``service-review-created`` webhook (``events[].eventData``) or a
  Business API review (``id``, ``stars``, ``title``, ``text``, ``consumer``);
* Glassdoor: an employer review as its API/GraphQL returns it (``reviewId``,
  ``ratingOverall``, ``summary``, ``pros``, ``cons``, ``reviewDateTime``);
* Angi: a review from the Angi partner feed (``reviewId``, ``rating``, ``reviewText``);
* ConsumerAffairs: a review from its business feed (``id``, ``rating``, ``text``);
* App stores: App Store Connect ``customerReviews`` resource and Google Play Developer
  API ``reviews`` resource (``comments[].userComment``).

Region only where the review itself says it: the App Store's ``territory`` (ISO 3166
alpha-3, e.g. ``FIN``). The other sites' review payloads name no product and no place (the
business or app is the one whose reviews are fetched).
"""

from __future__ import annotations

from typing import Any

from shared.events.common import Channel
from shared.events.complaint import Contact
from shared.service import Rejected

from .base import (
    IntakeMeta,
    JsonObject,
    as_float,
    as_list,
    as_object,
    author,
    build_contact,
    dig,
    first_text,
    handle,
    join_texts,
    load_object,
    obj_at,
    parse_time,
    rating_is_praise,
    require,
    text_at,
)

_GOOGLE_STARS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}


def _rating(value: Any, name: str, scale_max: float = 5) -> float:
    rating = as_float(require(value, name), name)
    assert rating is not None
    if not 0 <= rating <= scale_max:
        raise Rejected("invalid_field", f"{name} {rating} outside 0..{scale_max}")
    return rating * 5 / scale_max


def _review(
    raw: bytes,
    meta: IntakeMeta,
    *,
    platform: str,
    external_id: str,
    rating: float,
    text: str,
    reviewer: str | None,
    reviewer_id: str | None,
    received: Any,
    subject: str | None = None,
    url: str | None = None,
    region: str | None = None,
) -> Contact:
    if not text and rating is None:
        raise Rejected("missing_field", "review has neither text nor rating")
    return build_contact(
        raw,
        meta,
        external_id=external_id,
        source=platform,
        channel=Channel.REVIEW,
        platform=platform,
        kind="praise" if rating_is_praise(rating) else "complaint",
        subject=subject,
        text=text,
        public=True,
        rating=rating,
        author=author(name=reviewer, handle=handle(platform, reviewer_id, at=False)),
        received_at=parse_time(received, "created"),
        url=url,
        region=region,
    )


def google_business(raw: bytes, meta: IntakeMeta) -> Contact | None:
    review = load_object(raw)
    stars = require(text_at(review, "starRating"), "starRating")
    if stars not in _GOOGLE_STARS:
        raise Rejected("invalid_field", f"starRating {stars[:20]!r}")
    reviewer = obj_at(review, "reviewer")
    return _review(
        raw,
        meta,
        platform="google_business",
        external_id=require(first_text(review, ("reviewId",), ("name",)), "reviewId"),
        rating=float(_GOOGLE_STARS[stars]),
        text=text_at(review, "comment") or "",
        reviewer=None if reviewer.get("isAnonymous") else text_at(reviewer, "displayName"),
        reviewer_id=None,  # the API gives no stable reviewer id
        received=review.get("createTime"),
    )


def yelp(raw: bytes, meta: IntakeMeta) -> Contact | None:
    review = load_object(raw)
    if "reviews" in review:
        review = as_object(_one(review["reviews"], "reviews"), "review")
    user = obj_at(review, "user")
    return _review(
        raw,
        meta,
        platform="yelp",
        external_id=require(text_at(review, "id"), "id"),
        rating=_rating(review.get("rating"), "rating"),
        text=require(text_at(review, "text"), "text"),
        reviewer=text_at(user, "name"),
        reviewer_id=text_at(user, "id"),
        received=review.get("time_created"),
        url=text_at(review, "url"),
    )


def trustpilot(raw: bytes, meta: IntakeMeta) -> Contact | None:
    body = load_object(raw)
    if "events" in body:
        event = as_object(_one(body["events"], "events"), "event")
        if event.get("eventName") != "service-review-created":
            return None
        review = as_object(event.get("eventData"), "eventData")
    else:
        review = body
    consumer = obj_at(review, "consumer")
    links = [
        link.get("href")
        for link in as_list(review.get("links") or review.get("link"), "links")
        if isinstance(link, dict) and link.get("rel") in ("reviews", "self")
    ]
    return _review(
        raw,
        meta,
        platform="trustpilot",
        external_id=require(text_at(review, "id"), "id"),
        rating=_rating(review.get("stars"), "stars"),
        subject=text_at(review, "title"),
        text=text_at(review, "text") or "",
        reviewer=first_text(consumer, ("displayName",), ("name",)),
        reviewer_id=text_at(consumer, "id"),
        received=review.get("createdAt"),
        url=links[0] if links and isinstance(links[0], str) else None,
    )


def glassdoor(raw: bytes, meta: IntakeMeta) -> Contact | None:
    review = load_object(raw)
    job = first_text(review, ("jobTitle", "text"), ("jobTitle",))
    cons = text_at(review, "cons")
    text = join_texts(
        [
            cons and f"Cons: {cons}",
            (lambda p: p and f"Pros: {p}")(text_at(review, "pros")),
            (lambda a: a and f"Advice to management: {a}")(text_at(review, "advice")),
        ]
    )
    return _review(
        raw,
        meta,
        platform="glassdoor",
        external_id=require(text_at(review, "reviewId"), "reviewId"),
        rating=_rating(review.get("ratingOverall"), "ratingOverall"),
        subject=text_at(review, "summary"),
        text=require(text, "pros/cons"),
        reviewer=job,  # Glassdoor reviews are anonymous: the job title is all there is
        reviewer_id=None,
        received=review.get("reviewDateTime"),
    )


def angi(raw: bytes, meta: IntakeMeta) -> Contact | None:
    review = load_object(raw)
    return _review(
        raw,
        meta,
        platform="angi",
        external_id=require(first_text(review, ("reviewId",), ("id",)), "reviewId"),
        rating=_rating(first_text(review, ("rating",), ("overallRating",)), "rating"),
        subject=first_text(review, ("serviceDescription",), ("title",)),
        text=require(first_text(review, ("reviewText",), ("comments",)), "reviewText"),
        reviewer=first_text(review, ("memberName",), ("reviewerName",)),
        reviewer_id=text_at(review, "memberId"),
        received=first_text(review, ("reviewDate",), ("createdDate",)),
    )


def consumeraffairs(raw: bytes, meta: IntakeMeta) -> Contact | None:
    review = load_object(raw)
    reviewer = obj_at(review, "author")
    return _review(
        raw,
        meta,
        platform="consumeraffairs",
        external_id=require(text_at(review, "id"), "id"),
        rating=_rating(review.get("rating"), "rating"),
        subject=text_at(review, "title"),
        text=require(text_at(review, "text"), "text"),
        reviewer=text_at(reviewer, "name"),
        reviewer_id=text_at(reviewer, "id"),
        received=first_text(review, ("published_at",), ("date",)),
        url=text_at(review, "url"),
    )


def app_store(raw: bytes, meta: IntakeMeta) -> Contact | None:
    body = load_object(raw)
    data = as_object(_one(require(body.get("data"), "data"), "data"), "data")
    if data.get("type") != "customerReviews":
        raise Rejected("invalid_field", f"data.type is {data.get('type')!r}")
    attributes = as_object(data.get("attributes"), "data.attributes")
    return _review(
        raw,
        meta,
        platform="app_store",
        external_id=require(text_at(data, "id"), "data.id"),
        rating=_rating(attributes.get("rating"), "rating"),
        subject=text_at(attributes, "title"),
        text=text_at(attributes, "body") or "",
        reviewer=text_at(attributes, "reviewerNickname"),
        reviewer_id=None,
        received=attributes.get("createdDate"),
        region=text_at(attributes, "territory"),
    )


def google_play(raw: bytes, meta: IntakeMeta) -> Contact | None:
    review = load_object(raw)
    comment: JsonObject | None = None
    for item in as_list(require(review.get("comments"), "comments"), "comments"):
        if isinstance(item, dict) and isinstance(item.get("userComment"), dict):
            comment = item["userComment"]
            break
    if comment is None:
        raise Rejected("missing_field", "comments[].userComment")
    return _review(
        raw,
        meta,
        platform="google_play",
        external_id=require(text_at(review, "reviewId"), "reviewId"),
        rating=_rating(comment.get("starRating"), "starRating"),
        text=text_at(comment, "text") or "",
        reviewer=text_at(review, "authorName"),
        reviewer_id=None,
        received=dig(comment, "lastModified"),
    )


def _one(value: Any, name: str) -> Any:
    if isinstance(value, list):
        if len(value) != 1:
            raise Rejected("invalid_field", f"{name}: expected one item, got {len(value)}")
        return value[0]
    return value
