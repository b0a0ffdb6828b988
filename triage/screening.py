"""Mail that must never get a refusal draft, whatever it says (RFC 3834 and practice)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from triage.parsing import Inquiry

_ROBOT_SENDER = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|ne[-_.]?pas[-_.]?repondre|mailer[-_.]?daemon"
    r"|postmaster|bounces?|notifications?)(?:[-+_.].*)?@",
    re.IGNORECASE,
)


def screen(
    inquiry: Inquiry,
    *,
    own_addresses: Collection[str],
    allow: Iterable[str] = (),
    flags: Collection[str] = (),
) -> str | None:
    """Why this message gets no draft, or None when it may get one."""
    auto = inquiry.headers.get("auto-submitted", "")
    if auto and auto.split(";")[0].strip() != "no":
        return f"auto-submitted ({auto.split(';')[0].strip()})"
    if inquiry.has_list_headers:
        return "mailing list (List-* header)"
    precedence = inquiry.headers.get("precedence", "")
    if precedence in ("bulk", "list", "junk"):
        return f"precedence {precedence}"
    if inquiry.headers.get("return-path", "").strip() == "<>":
        return "bounce (empty Return-Path)"
    sender = inquiry.sender_addr
    if not sender or "@" not in sender:
        return "no sender address"
    if _ROBOT_SENDER.match(sender) or _ROBOT_SENDER.match(inquiry.reply_address):
        return "automated sender"
    own = {a.lower() for a in own_addresses if a}
    if sender in own:
        return "sent by you"
    lowered_flags = {f.lower() for f in flags}
    if "\\answered" in lowered_flags:
        return "already answered"
    if "\\draft" in lowered_flags:
        return "a draft"
    domain = sender.rsplit("@", 1)[1]
    for entry in allow:
        entry = entry.strip().lower()
        if entry and (entry == sender or (entry.lstrip("@") == domain and entry.startswith("@"))):
            return "on the allow list"
    return None
