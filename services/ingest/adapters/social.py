"""Social networks: public posts, comments and mentions, and direct messages.

* X/Twitter: API v2 tweet objects (``data`` + ``includes.users`` with
  ``public_metrics.followers_count`` as reach), v2 DM events (``event_type:
  MessageCreate``) and Account Activity API webhooks (``tweet_create_events``,
  ``direct_message_events``);
* Facebook: Graph API Page webhooks (``object: page``; ``changes`` of field ``feed`` for
  posts and comments, ``messaging`` for Messenger);
* Instagram: Graph API webhooks (``object: instagram``; ``comments``, ``mentions``,
  ``messaging``);
* YouTube: Data API v3 ``youtube#commentThread`` and ``youtube#comment`` resources.

A webhook delivery may batch several entries; the HTTP intake splits them so one intake
record carries one. Activity of the company's own account (echoes, its replies) is not a
complaint: the adapter returns None.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.events.common import Channel
from shared.events.complaint import Attachment, Contact, Thread
from shared.service import Rejected

from .base import (
    IntakeMeta,
    JsonObject,
    as_int,
    as_list,
    as_object,
    author,
    build_contact,
    dig,
    first_text,
    handle,
    html_to_text,
    load_object,
    obj_at,
    parse_time,
    require,
    text_at,
)

# -- X / Twitter ----------------------------------------------------------------------


def _twitter_time(value: Any) -> datetime | None:
    if isinstance(value, str) and len(value) == 30 and value[3] == " ":
        try:  # v1.1: "Wed Oct 10 20:19:24 +0000 2018"
            return datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)
        except ValueError:
            pass
    return parse_time(value, "created_at")


def _single(value: Any, name: str) -> JsonObject:
    if isinstance(value, list):
        if len(value) != 1:
            raise Rejected("invalid_field", f"{name}: expected one item, got {len(value)}")
        value = value[0]
    return as_object(value, name)


def twitter(raw: bytes, meta: IntakeMeta) -> Contact | None:
    body = load_object(raw)
    if "tweet_create_events" in body or "direct_message_events" in body:
        return _twitter_account_activity(raw, meta, body)
    data = _single(require(body.get("data"), "data"), "data")
    users = {
        str(u.get("id")): u
        for u in as_list(dig(body, "includes", "users"), "includes.users")
        if isinstance(u, dict)
    }
    if data.get("event_type") is not None:
        if data.get("event_type") != "MessageCreate":
            return None
        user = users.get(str(data.get("sender_id")), {})
        return build_contact(
            raw,
            meta,
            external_id=require(text_at(data, "id"), "data.id"),
            source="twitter",
            channel=Channel.SOCIAL,
            platform="twitter",
            text=require(text_at(data, "text"), "data.text"),
            public=False,
            author=author(
                name=text_at(user, "name"),
                handle=handle("twitter", text_at(user, "username") or text_at(data, "sender_id")),
            ),
            reach=as_int(dig(user, "public_metrics", "followers_count"), "followers_count"),
            received_at=parse_time(data.get("created_at"), "created_at"),
            thread=Thread(conversation_id=text_at(data, "dm_conversation_id")),
        )
    tweet_id = require(text_at(data, "id"), "data.id")
    user = users.get(str(data.get("author_id")), {})
    username = text_at(user, "username")
    replied_to = [
        str(r.get("id"))
        for r in as_list(data.get("referenced_tweets"), "referenced_tweets")
        if isinstance(r, dict) and r.get("type") == "replied_to"
    ]
    media = as_list(dig(body, "includes", "media"), "includes.media")
    return build_contact(
        raw,
        meta,
        external_id=tweet_id,
        source="twitter",
        channel=Channel.SOCIAL,
        platform="twitter",
        text=require(first_text(data, ("note_tweet", "text"), ("text",)), "data.text"),
        public=True,
        author=author(
            name=text_at(user, "name"),
            handle=handle("twitter", username or text_at(data, "author_id")),
        ),
        reach=as_int(dig(user, "public_metrics", "followers_count"), "followers_count"),
        received_at=parse_time(data.get("created_at"), "created_at"),
        attachments=[
            Attachment(content_type=text_at(m, "type")) for m in media if isinstance(m, dict)
        ],
        thread=Thread(
            in_reply_to=replied_to[0] if replied_to else None,
            conversation_id=text_at(data, "conversation_id"),
        ),
        url=f"https://x.com/{username or 'i'}/status/{tweet_id}",
    )


def _twitter_account_activity(raw: bytes, meta: IntakeMeta, body: JsonObject) -> Contact | None:
    own = text_at(body, "for_user_id")
    if "tweet_create_events" in body:
        tweet = _single(body["tweet_create_events"], "tweet_create_events")
        user = as_object(tweet.get("user"), "user")
        if own and text_at(user, "id_str") == own:
            return None  # our own tweet or reply
        tweet_id = require(first_text(tweet, ("id_str",), ("id",)), "id_str")
        screen_name = text_at(user, "screen_name")
        text = first_text(tweet, ("extended_tweet", "full_text"), ("full_text",), ("text",))
        return build_contact(
            raw,
            meta,
            external_id=tweet_id,
            source="twitter",
            channel=Channel.SOCIAL,
            platform="twitter",
            text=require(text, "text"),
            public=True,
            author=author(name=text_at(user, "name"), handle=handle("twitter", screen_name)),
            reach=as_int(user.get("followers_count"), "followers_count"),
            received_at=_twitter_time(tweet.get("created_at")),
            thread=Thread(in_reply_to=text_at(tweet, "in_reply_to_status_id_str")),
            url=f"https://x.com/{screen_name or 'i'}/status/{tweet_id}",
        )
    event = _single(body["direct_message_events"], "direct_message_events")
    if event.get("type") != "message_create":
        return None
    sender = text_at(event, "message_create", "sender_id")
    if own and sender == own:
        return None
    user = dig(body, "users", sender or "") or {}
    return build_contact(
        raw,
        meta,
        external_id=require(text_at(event, "id"), "id"),
        source="twitter",
        channel=Channel.SOCIAL,
        platform="twitter",
        text=require(text_at(event, "message_create", "message_data", "text"), "text"),
        public=False,
        author=author(
            name=text_at(user, "name"),
            handle=handle("twitter", text_at(user, "screen_name") or sender),
        ),
        reach=as_int(dig(user, "followers_count"), "followers_count"),
        received_at=parse_time(event.get("created_timestamp"), "created_timestamp"),
    )


# -- Facebook and Instagram (Graph API webhooks) ----------------------------------------


def _graph_entry(body: JsonObject, expected_object: str) -> JsonObject:
    if body.get("object") != expected_object:
        raise Rejected("invalid_field", f"object is {body.get('object')!r}, not {expected_object}")
    return _single(require(body.get("entry"), "entry"), "entry")


def _messaging(raw: bytes, meta: IntakeMeta, entry: JsonObject, platform: str) -> Contact | None:
    event = _single(entry["messaging"], "messaging")
    message = event.get("message")
    if not isinstance(message, dict) or message.get("is_echo"):
        return None  # delivery/read receipts, reactions, our own messages
    sender = require(text_at(event, "sender", "id"), "sender.id")
    if sender == text_at(entry, "id"):
        return None
    attachments = [
        Attachment(content_type=text_at(a, "type"))
        for a in as_list(message.get("attachments"), "attachments")
        if isinstance(a, dict)
    ]
    text = text_at(message, "text")
    if not text and not attachments:
        return None
    return build_contact(
        raw,
        meta,
        external_id=require(text_at(message, "mid"), "message.mid"),
        source=platform,
        channel=Channel.SOCIAL,
        platform=platform,
        text=text or "",
        public=False,
        author=author(handle=handle(platform, sender, at=False)),
        received_at=parse_time(event.get("timestamp") or entry.get("time"), "timestamp"),
        attachments=attachments,
        thread=Thread(conversation_id=f"{platform}:{sender}"),
    )


def facebook(raw: bytes, meta: IntakeMeta) -> Contact | None:
    entry = _graph_entry(load_object(raw), "page")
    if "messaging" in entry:
        return _messaging(raw, meta, entry, "facebook")
    change = _single(require(entry.get("changes"), "entry.changes"), "changes")
    if change.get("field") != "feed":
        return None
    value = as_object(change.get("value"), "value")
    if value.get("item") not in ("post", "status", "comment", "photo", "video", "share"):
        return None  # reactions, likes...
    if value.get("verb") not in ("add", "edited"):
        return None
    sender = as_object(value.get("from"), "value.from")
    if text_at(sender, "id") == text_at(entry, "id"):
        return None  # the page's own post or reply
    item_id = first_text(value, ("comment_id",), ("post_id",))
    text = require(text_at(value, "message"), "value.message")
    parent = text_at(value, "parent_id")
    return build_contact(
        raw,
        meta,
        external_id=require(item_id, "value.comment_id or value.post_id"),
        source="facebook",
        channel=Channel.SOCIAL,
        platform="facebook",
        text=text,
        public=True,
        author=author(
            name=text_at(sender, "name"), handle=handle("facebook", text_at(sender, "id"), at=False)
        ),
        reach=as_int(sender.get("followers_count"), "from.followers_count"),
        received_at=parse_time(value.get("created_time") or entry.get("time"), "created_time"),
        thread=Thread(
            in_reply_to=parent if parent != text_at(value, "post_id") else None,
            conversation_id=text_at(value, "post_id"),
        ),
        url=text_at(value, "post", "permalink_url") or text_at(value, "link"),
    )


def instagram(raw: bytes, meta: IntakeMeta) -> Contact | None:
    entry = _graph_entry(load_object(raw), "instagram")
    if "messaging" in entry:
        return _messaging(raw, meta, entry, "instagram")
    change = _single(require(entry.get("changes"), "entry.changes"), "changes")
    field = change.get("field")
    value = as_object(change.get("value"), "value")
    if field not in ("comments", "live_comments", "mentions"):
        return None
    sender = obj_at(value, "from")
    if sender and text_at(sender, "id") == text_at(entry, "id"):
        return None
    text = first_text(value, ("text",), ("caption",))
    external = first_text(value, ("id",), ("comment_id",), ("media_id",))
    return build_contact(
        raw,
        meta,
        external_id=require(external, "value.id"),
        source="instagram",
        channel=Channel.SOCIAL,
        platform="instagram",
        text=require(text, "value.text"),
        public=True,
        author=author(
            handle=handle("instagram", text_at(sender, "username") or text_at(sender, "id"))
        ),
        reach=as_int(sender.get("followers_count"), "from.followers_count"),
        received_at=parse_time(value.get("timestamp") or entry.get("time"), "time"),
        thread=Thread(
            in_reply_to=text_at(value, "parent_id"),
            conversation_id=first_text(value, ("media", "id"), ("media_id",)),
        ),
    )


# -- YouTube --------------------------------------------------------------------------


def youtube(raw: bytes, meta: IntakeMeta) -> Contact | None:
    resource = load_object(raw)
    kind = resource.get("kind")
    if kind == "youtube#commentThread":
        comment = as_object(dig(resource, "snippet", "topLevelComment"), "topLevelComment")
        public = obj_at(resource, "snippet").get("isPublic", True) is not False
    elif kind == "youtube#comment":
        comment, public = resource, True
    else:
        raise Rejected("invalid_field", f"kind is {kind!r}, not youtube#commentThread/comment")
    snippet = as_object(comment.get("snippet"), "comment.snippet")
    comment_id = require(text_at(comment, "id"), "comment.id")
    video_id = text_at(snippet, "videoId") or text_at(resource, "snippet", "videoId")
    channel_id = text_at(snippet, "authorChannelId", "value")
    display = text_at(snippet, "textOriginal") or html_to_text(
        text_at(snippet, "textDisplay") or ""
    )
    return build_contact(
        raw,
        meta,
        external_id=comment_id,
        source="youtube",
        channel=Channel.SOCIAL,
        platform="youtube",
        text=require(display, "snippet.textOriginal"),
        public=public,
        author=author(
            name=text_at(snippet, "authorDisplayName"),
            handle=handle("youtube", channel_id, at=False),
        ),
        received_at=parse_time(snippet.get("publishedAt"), "publishedAt"),
        thread=Thread(
            in_reply_to=text_at(snippet, "parentId"),
            conversation_id=video_id and f"video:{video_id}",
        ),
        url=f"https://www.youtube.com/watch?v={video_id}&lc={comment_id}" if video_id else None,
    )
