"""Surveys: CSAT and NPS answers. A low score is a complaint from a silent customer; a
high one is praise (recorded, no case).

* Delighted's ``survey_response.created`` webhook (``event_data.score``, ``survey_type``,
  ``comment``, ``person``; ``person_properties.case_id`` when the survey was sent for a
  case);
* amends' own survey answer (what the CRM returns for a ``followup.requests`` survey):
  ``{"response_id", "kind": "csat"|"nps", "score", "scale_max", "comment", "case_id",
  "respondent": {...}, "answered_at"}``.

Detractors are NPS 0-6 and CSAT at most 40 % of the scale (1-2 of 5); passives (NPS 7-8,
CSAT 3 of 5) are a complaint only when they wrote a comment.
"""

from __future__ import annotations

from typing import Literal

from shared.events.common import Channel
from shared.events.complaint import Contact, SurveyAnswer
from shared.service import Rejected

from .base import (
    IntakeMeta,
    as_int,
    author,
    build_contact,
    first_text,
    load_object,
    obj_at,
    parse_time,
    require,
    text_at,
)


def _kind_of(
    score: int, kind: str, scale_max: int, comment: str | None
) -> Literal["complaint", "praise"]:
    if kind == "nps":
        detractor, passive = score <= 6, score <= 8
    else:
        detractor = score <= scale_max * 0.4 + 1e-9
        passive = score <= scale_max * 0.6 + 1e-9
    if detractor or (passive and comment):
        return "complaint"
    return "praise"


def adapt(raw: bytes, meta: IntakeMeta) -> Contact | None:
    body = load_object(raw)
    if "event_data" in body:  # Delighted
        if body.get("event_type") not in ("survey_response.created", "survey_response.updated"):
            return None
        data = body["event_data"]
        if not isinstance(data, dict):
            raise Rejected("invalid_field", "event_data is not an object")
        person = obj_at(data, "person")
        props = obj_at(data, "person_properties")
        kind = (text_at(data, "survey_type") or "nps").lower()
        response_id = text_at(data, "id")
        score_value = data.get("score")
        comment = text_at(data, "comment")
        case_id = first_text(props, ("case_id",), ("Case ID",))
        respondent = person
        received = data.get("created_at")
        platform = "delighted"
        scale_max = 10 if kind == "nps" else 5
    else:
        kind = (text_at(body, "kind") or "").lower()
        response_id = text_at(body, "response_id")
        score_value = body.get("score")
        comment = text_at(body, "comment")
        case_id = text_at(body, "case_id")
        respondent = obj_at(body, "respondent")
        received = body.get("answered_at")
        platform = text_at(body, "platform") or "survey"
        scale_max = as_int(body.get("scale_max"), "scale_max") or (10 if kind == "nps" else 5)
    if kind not in ("csat", "nps"):
        raise Rejected("invalid_field", f"survey kind {kind[:20]!r} is not csat or nps")
    score = as_int(require(score_value, "score"), "score")
    assert score is not None
    if not 0 < scale_max <= 100 or not 0 <= score <= scale_max:
        raise Rejected("invalid_field", f"score {score} outside 0..{scale_max}")
    answer = SurveyAnswer(
        kind=kind,  # type: ignore[arg-type]
        score=score,
        scale_max=scale_max,
        comment=comment,
        case_id=case_id,
    )
    label = "NPS" if kind == "nps" else "CSAT"
    return build_contact(
        raw,
        meta,
        external_id=require(response_id, "response id"),
        source="survey",
        channel=Channel.SURVEY,
        platform=platform,
        kind=_kind_of(score, kind, scale_max, comment),
        text=comment or f"{label} {score}/{scale_max} (no comment)",
        public=False,
        survey=answer,
        author=author(
            name=text_at(respondent, "name"),
            email=text_at(respondent, "email"),
            phone=first_text(respondent, ("phone_number",), ("phone",)),
            crm_id=text_at(respondent, "crm_id"),
            region=meta.default_phone_region,
        ),
        received_at=parse_time(received, "answered_at"),
    )
