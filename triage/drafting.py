"""Decision + Inquiry -> the reply draft, rendered from templates the user can override."""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from triage.classify import Decision
from triage.config import Drafting, Identity
from triage.errors import TemplateError
from triage.parsing import Inquiry
from triage.text import quote

_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|odp|r|ré|réf|ref|rif)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
_FR_DAYS = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
_FR_MONTHS = (
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
)
_POLICY = email.policy.default.clone(linesep="\r\n", max_line_length=78)


@dataclass(frozen=True)
class Draft:
    message_id: str
    to: str
    subject: str
    template: str
    body: str
    raw: bytes


def reply_subject(subject: str) -> str:
    """`Re: ` once, whatever prefixes (`RE:`, `Réf :`, `AW:`...) the inquiry carried."""
    rest = _REPLY_PREFIX.sub("", subject).strip()
    return f"Re: {rest}" if rest else "Re:"


def draft_message_id(account: str, inquiry_id: str, domain: str) -> str:
    """Stable across runs and crashes, so a draft already appended can be found again."""
    digest = hashlib.sha256(f"{account}\n{inquiry_id}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def format_date(when: datetime | None, lang: str) -> str:
    if when is None:
        return ""
    if lang == "fr":
        return (
            f"{_FR_DAYS[when.weekday()]} {when.day} {_FR_MONTHS[when.month - 1]} "
            f"{when.year} à {when:%H:%M}"
        )
    return f"{when:%a}, {when.day} {when:%b %Y} at {when:%H:%M}"


class Drafter:
    """Renders drafts; the user's templates_dir is searched before the bundled templates."""

    def __init__(self, identity: Identity, drafting: Drafting) -> None:
        self.identity = identity
        self.drafting = drafting
        search = [str(Path(drafting.templates_dir).expanduser())] if drafting.templates_dir else []
        search.append(str(resources.files("triage.templates")))
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(search),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain-text mail, not HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render_body(self, decision: Decision, inquiry: Inquiry) -> tuple[str, str]:
        lang = decision.lang if decision.lang in ("en", "fr") else "en"
        name = f"{decision.label}.{lang}.j2"
        try:
            body = self.env.get_template(name).render(self._context(inquiry, lang))
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"template {exc.name} not found (templates_dir or bundled)"
            ) from None
        except jinja2.TemplateError as exc:
            where = f" line {exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
            raise TemplateError(f"template {name}{where}: {exc}") from None
        return name, re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"

    def build(
        self, decision: Decision, inquiry: Inquiry, *, account: str, inquiry_id: str, now: datetime
    ) -> Draft:
        template, body = self.render_body(decision, inquiry)
        domain = self.identity.address.rpartition("@")[2] or "localhost"
        message_id = draft_message_id(account, inquiry_id, domain)
        msg = EmailMessage(policy=_POLICY)
        msg["From"] = email.utils.formataddr((self.identity.name, self.identity.address))
        to_name = inquiry.sender_name if not inquiry.reply_to else ""
        msg["To"] = email.utils.formataddr((to_name, inquiry.reply_address))
        msg["Subject"] = reply_subject(inquiry.subject)
        msg["Date"] = email.utils.format_datetime(now)
        msg["Message-ID"] = message_id
        if inquiry.message_id:
            msg["In-Reply-To"] = inquiry.message_id
            refs = [*inquiry.references, inquiry.message_id][-12:]
            msg["References"] = " ".join(refs)
        msg.set_content(body, charset="utf-8", cte="quoted-printable")
        return Draft(
            message_id, inquiry.reply_address, str(msg["Subject"]), template, body, msg.as_bytes()
        )

    def _context(self, inquiry: Inquiry, lang: str) -> dict[str, Any]:
        name = inquiry.sender_name.strip().strip('"')
        if "@" in name:
            name = ""
        return {
            "sender": {
                "name": name,
                "first_name": name.split()[0] if name else "",
                "address": inquiry.reply_address,
            },
            "subject": _REPLY_PREFIX.sub("", inquiry.subject).strip(),
            "identity": {"name": self.identity.name, "address": self.identity.address},
            "signature": self.drafting.signature or self.identity.name,
            "explain_reason": self.drafting.explain_reason,
            "resources": [{"title": r.title, "url": r.url} for r in self.drafting.resources],
            "referrals": list(self.drafting.referrals),
            "original": {
                "author": name or inquiry.sender_addr,
                "date": format_date(inquiry.date, lang),
                "quoted": quote(inquiry.text),
            },
        }
