"""Email: a raw RFC 5322 / MIME message (as an MTA or an IMAP fetch hands it over)."""

from __future__ import annotations

import re
from email import policy
from email.errors import HeaderParseError
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses

from shared.events.common import Channel
from shared.events.complaint import Attachment, Contact, Thread
from shared.service import Rejected

from .base import (
    IntakeMeta,
    author,
    build_contact,
    clean_text,
    decode_text,
    html_to_text,
    parse_time,
)

# A reply's quoted history starts at one of these lines (the languages in use).
_QUOTE_HEADERS = [
    r"^On .{0,200}wrote:\s*$",
    r"^Am .{0,200}schrieb .{0,100}:\s*$",
    r"^Le .{0,200}a écrit\s*:\s*$",
    r"^El .{0,200}escribió:\s*$",
    r".{0,200}kirjoitti( \S+)?:\s*$",
    r".{0,200}kirjutas( \S+)?:\s*$",
    r"^Pada .{0,200}menulis:\s*$",
    r".{0,200}tarihinde .{0,200}yazd\u0131:\s*$",
    r".{0,200}نوشت:\s*$",
    r"^-{2,}\s*(Original Message|Alkuperäinen viesti|Ursprüngliche Nachricht|Message d'origine"
    r"|Mensaje original|Algne kiri|Orijinal [Ii]leti|Pesan [Aa]sli)\s*-{2,}\s*$",
    r"^_{10,}\s*$",  # Outlook's separator before From:/Sent:
    r"^(From|Lähettäjä|Von|De|Saatja|Dari|Kimden|از)\s*:\s.{0,200}$",
]
_QUOTE_RE = re.compile("|".join(f"(?:{p})" for p in _QUOTE_HEADERS), re.IGNORECASE)
# A signature starts at the RFC 3676 delimiter or a mobile footer.
_SIGNATURE_RE = re.compile(
    r"^(-- ?|Sent from my .{1,40}|Lähetetty .{1,40}|Von meinem .{1,40} gesendet"
    r"|Envoyé de mon .{1,40}|Enviado desde mi .{1,40}|Dikirim dari .{1,40}"
    r"|Get Outlook for .{1,40})\s*$",
    re.IGNORECASE,
)


def strip_reply(text: str) -> str:
    """The new part of a reply: no quoted history, no signature."""
    kept: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if _QUOTE_RE.match(stripped) or _SIGNATURE_RE.match(line.rstrip("\n")):
            break
        kept.append(line)
    result = "\n".join(kept).strip()
    return result or text.strip()


def _decode_part(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return decode_text(payload, charset)
    except LookupError:
        raise Rejected("bad_encoding", f"unknown charset {charset!r}") from None


def _bodies(message: EmailMessage) -> tuple[str, list[Attachment]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if (
            disposition == "attachment"
            or (filename and disposition != "inline")
            or (not content_type.startswith("text/") and content_type != "message/rfc822")
        ):
            payload = part.get_payload(decode=True)
            attachments.append(
                Attachment(
                    filename=filename,
                    content_type=content_type,
                    size_bytes=len(payload) if isinstance(payload, bytes) else None,
                )
            )
        elif content_type == "text/plain":
            plain.append(_decode_part(part))
        elif content_type == "text/html":
            html.append(_decode_part(part))
    if plain:
        return "\n".join(plain), attachments
    return "\n".join(html_to_text(h) for h in html), attachments


def _message_ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value or "")


def adapt(raw: bytes, meta: IntakeMeta) -> Contact | None:
    if not raw.strip():
        raise Rejected("unparseable_mime", "empty message")
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        sender = message.get("From")
        subject = message.get("Subject")
        message_id = next(iter(_message_ids(message.get("Message-ID"))), None)
        in_reply_to = next(iter(_message_ids(message.get("In-Reply-To"))), None)
        references = _message_ids(message.get("References"))
        date = message.get("Date")
    except (HeaderParseError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise Rejected("unparseable_mime", f"{type(exc).__name__}: {exc}"[:300]) from None
    if not sender:
        raise Rejected("unparseable_mime", "no From header: not an RFC 5322 message")
    addresses = [a for a in getaddresses([str(sender)]) if a[1]]
    if not addresses or "@" not in addresses[0][1]:
        raise Rejected("missing_field", "From has no address")
    name, address = addresses[0]
    try:
        body, attachments = _bodies(message)
    except (ValueError, TypeError, AttributeError, LookupError, AssertionError) as exc:
        raise Rejected("unparseable_mime", f"{type(exc).__name__}: {exc}"[:300]) from None
    text = strip_reply(clean_text(body))
    if not text and not subject:
        raise Rejected("missing_field", "message has no text and no subject")
    try:
        received = parse_time(str(date), "Date") if date else None
    except Rejected:
        received = None  # a broken Date header is common; the intake time stands in
    return build_contact(
        raw,
        meta,
        external_id=message_id,
        source="email",
        channel=Channel.EMAIL,
        platform="email",
        # Fold CR/LF decoded from encoded words: a CRM may reuse the subject in a header.
        subject=" ".join(str(subject).split()) if subject else None,
        text=text or clean_text(str(subject)),
        public=False,
        author=author(name=name, email=address, region=meta.default_phone_region),
        received_at=received,
        attachments=attachments,
        thread=Thread(
            in_reply_to=in_reply_to,
            references=references,
            conversation_id=(references[0] if references else in_reply_to),
        ),
    )
