"""Raw bytes -> Inquiry, the plain record the rest of the pipeline works on."""

from __future__ import annotations

import email.utils
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import mailparser

from triage.text import detect_language, html_to_text, new_text

# mail-parser warns for every part type it does not handle; that is not our user's concern.
logging.getLogger("mailparser").setLevel(logging.ERROR)

#: Headers that screening looks at, kept lower-cased and unfolded.
SCREEN_HEADERS = ("auto-submitted", "precedence", "x-auto-response-suppress", "return-path")


class ParseError(Exception):
    """This message cannot be read; the pipeline records it as an error and moves on."""


@dataclass(frozen=True)
class Inquiry:
    sender_name: str
    sender_addr: str
    subject: str
    text: str
    new_text: str
    lang: str
    reply_to: str = ""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    date: datetime | None = None
    message_id: str = ""
    references: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    has_list_headers: bool = False

    @property
    def reply_address(self) -> str:
        return self.reply_to or self.sender_addr


def parse(raw: bytes) -> Inquiry:
    try:
        mail = mailparser.parse_from_bytes(raw)
        message = mail.message
        text = "\n".join(part for part in mail.text_plain if part).strip()
        if not text and mail.text_html:
            text = html_to_text("\n".join(mail.text_html))
        senders = mail.from_ or []
        reply_to = mail.reply_to or []
        subject = _clean_header(_one(mail.subject))
        references = tuple(re.findall(r"<[^<>\s]+>", str(message.get("References", ""))))
        in_reply_to = re.findall(r"<[^<>\s]+>", str(message.get("In-Reply-To", "")))
        if in_reply_to and in_reply_to[-1] not in references:
            references = (*references, in_reply_to[-1])
        headers = {
            name: _clean_header(str(message.get(name, ""))).lower()
            for name in SCREEN_HEADERS
            if message.get(name) is not None
        }
        has_list = any(k.lower().startswith("list-") for k in message.keys())  # noqa: SIM118 (Message is no dict)
        date = _date(str(message.get("Date", "")), mail.date)
        message_id = _first_id(str(message.get("Message-ID", "")))
    except ParseError:
        raise
    except Exception as exc:  # mail-parser and email raise many types on broken input
        raise ParseError(f"{type(exc).__name__}: {exc}") from None
    fresh = new_text(text)
    return Inquiry(
        sender_name=_clean_header(senders[0][0]) if senders else "",
        sender_addr=(senders[0][1] or "").strip().lower() if senders else "",
        reply_to=(reply_to[0][1] or "").strip().lower() if reply_to else "",
        to=tuple(a.lower() for _, a in (mail.to or []) if a),
        cc=tuple(a.lower() for _, a in (mail.cc or []) if a),
        subject=subject,
        text=text,
        new_text=fresh,
        lang=detect_language(subject + "\n" + (fresh or text)),
        date=date,
        message_id=message_id,
        references=references,
        headers=headers,
        has_list_headers=has_list,
    )


def _one(value: object) -> str:
    """A header mail-parser returns as a list when the message repeats it: the first wins."""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


def _clean_header(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def _first_id(value: str) -> str:
    found = re.findall(r"<[^<>\s]+>", value)
    return found[0] if found else ""


def _date(header: str, fallback: datetime | None) -> datetime | None:
    """The Date header in the sender's own zone (mail-parser gives UTC and a zone string)."""
    try:
        parsed = email.utils.parsedate_to_datetime(header) if header.strip() else None
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed is None and isinstance(fallback, datetime):
        parsed = fallback if fallback.tzinfo else fallback.replace(tzinfo=UTC)
    if parsed is not None and abs(parsed.utcoffset() or timedelta()) > timedelta(hours=15):
        return parsed.astimezone(UTC)
    return parsed


def from_fields(
    *,
    subject: str,
    body: str,
    from_name: str = "",
    from_addr: str = "",
    date: str = "",
    lang: str = "",
) -> Inquiry:
    """An inquiry from the JSON Lines interchange format (LABELS.md), without MIME."""
    fresh = new_text(body)
    return Inquiry(
        sender_name=from_name,
        sender_addr=from_addr.lower(),
        subject=subject,
        text=body,
        new_text=fresh,
        lang=lang or detect_language(subject + "\n" + (fresh or body)),
        date=_date(date, None),
    )
