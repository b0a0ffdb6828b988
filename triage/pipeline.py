"""One pass over one account: fetch -> parse -> screen -> classify -> draft -> record.

The daemon and `triage run --once` share this code path. Messages are recorded strictly in
UID order, each in one transaction with the folder cursor, so a pass that dies anywhere
resumes at the first message it had not recorded, and the draft's stable Message-ID lets it
find a draft it had appended but not yet recorded.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from triage.classify import Classifier, Decision
from triage.config import Account, Config
from triage.context import Context
from triage.drafting import Drafter
from triage.mailbox import Mailbox, MessageRef
from triage.parsing import Inquiry, ParseError, parse
from triage.screening import screen
from triage.state import Outcome, State

log = logging.getLogger(__name__)

KEYWORD_PREFIX = "$triage_"


@dataclass
class Report:
    """One message's fate, for the summary, the demo and the log."""

    uid: str
    action: str
    reason: str = ""
    label: str = ""
    lang: str = ""
    subject: str = ""
    sender: str = ""
    evidence: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    draft: str = ""


@dataclass
class Summary:
    account: str
    seen: int = 0
    drafted: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    no_refusal: int = 0
    errors: int = 0
    failure: str = ""
    reports: list[Report] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "drafted": dict(self.drafted),
            "skipped": dict(self.skipped),
            "no_refusal": self.no_refusal,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class Pending:
    ref: MessageRef
    inquiry: Inquiry | None
    inquiry_id: str
    reason: str = ""
    error: str = ""


class Pass:
    """Everything one pass needs, built once by the caller (CLI, daemon or test)."""

    def __init__(
        self,
        config: Config,
        account: Account,
        mailbox: Mailbox,
        state: State,
        classifier: Classifier,
        drafter: Drafter,
        *,
        dry_run: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """`should_stop` is asked between messages: the daemon's clean shutdown."""
        self.config, self.account, self.mailbox, self.state = config, account, mailbox, state
        self.should_stop = should_stop
        self.stopped = False
        self.classifier, self.drafter, self.dry_run, self.clock = (
            classifier,
            drafter,
            dry_run,
            clock,
        )
        self.summary = Summary(account.name)
        self.uidvalidity = 0
        self._ids: set[str] = set()
        identity = config.identity
        self.own = {identity.address.lower(), *(a.lower() for a in identity.aliases)}
        if "@" in account.username:
            self.own.add(account.username.lower())

    def run(self) -> Summary:
        name, folder = self.account.name, self.mailbox.inbox
        cursor = self.state.cursor(name, folder)
        since = self.clock() - timedelta(days=self.account.first_run_days)
        listing = self.mailbox.list_new(cursor, since)
        self.uidvalidity = listing.uidvalidity
        if listing.restarted:
            if cursor is not None:
                log.warning(
                    "account %s: UIDVALIDITY of %s changed (%s -> %s); looking back %d "
                    "days, skipping what was already handled",
                    name,
                    folder,
                    cursor.uidvalidity,
                    listing.uidvalidity,
                    self.account.first_run_days,
                )
            else:
                log.info(
                    "account %s: first pass on %s, looking back %d days",
                    name,
                    folder,
                    self.account.first_run_days,
                )
            if not self.dry_run:
                self.state.start_folder(name, folder, listing.uidvalidity, since)
        refs = [
            r
            for r in listing.refs
            if not self.state.is_handled(name, folder, listing.uidvalidity, r.uid)
        ]
        # Chunks in listing order, oversized messages in their place: every message is
        # recorded in UID order, so a pass that stops or dies resumes at the first one it had
        # not recorded (the cursor is the highest UID recorded).
        cap, size = self.account.max_message_bytes, max(1, self.account.fetch_batch)
        for start in range(0, len(refs), size):
            chunk = refs[start : start + size]
            fetched = self.mailbox.fetch([r for r in chunk if r.size <= cap])
            by_uid = {ref.uid: raw for ref, raw in fetched}
            self._process(
                [(r, by_uid.get(r.uid)) for r in chunk if r.size > cap or r.uid in by_uid]
            )
            if self._stopping():
                break
        return self.summary

    def _stopping(self) -> bool:
        if not self.stopped and self.should_stop():
            self.stopped = True
            log.info("account %s: stopping; the rest waits for the next pass", self.account.name)
        return self.stopped

    def _process(self, batch: Sequence[tuple[MessageRef, bytes | None]]) -> None:
        """One chunk; a None body is a message over the size cap, recorded with its reason."""
        if not batch:
            return
        pending = [
            self._screen(ref, raw)
            if raw is not None
            else Pending(ref, None, "", reason=f"too large ({ref.size} bytes)")
            for ref, raw in batch
        ]
        to_classify = [p for p in pending if p.inquiry is not None and not p.reason and not p.error]
        inquiries = [p.inquiry for p in to_classify if p.inquiry]
        contexts = [self._context(i) for i in inquiries] if self.classifier.wants_history else None
        decisions = dict(
            zip(
                (p.ref.uid for p in to_classify),
                self.classifier.decide(inquiries, contexts),
                strict=True,
            )
        )
        drafts = {}
        for p in to_classify:
            decision = decisions[p.ref.uid]
            if decision.refuses and p.inquiry is not None:
                drafts[p.ref.uid] = self.drafter.build(
                    decision,
                    p.inquiry,
                    account=self.account.name,
                    inquiry_id=p.inquiry_id,
                    now=self.clock(),
                )
        existing = (
            self.mailbox.find_drafts([d.message_id for d in drafts.values()])
            if drafts and not self.dry_run
            else {}
        )
        for p in pending:
            if self._stopping():
                return
            draft = drafts.get(p.ref.uid)
            draft_uid = ""
            if draft is not None and not self.dry_run:
                if draft.message_id in existing:
                    draft_uid = existing[draft.message_id]
                    log.info(
                        "account %s: uid %s: draft already in %s (uid %s), not appending again",
                        self.account.name,
                        p.ref.uid,
                        "Drafts",
                        draft_uid,
                    )
                else:
                    draft_uid = self.mailbox.append_draft(
                        draft.raw, seen=self.config.drafting.mark_drafts_seen, when=self.clock()
                    )
                if self.config.drafting.tag_keywords:
                    self._tag(p.ref.uid, decisions[p.ref.uid].label)
            self._finish(p, decisions.get(p.ref.uid), draft.message_id if draft else "", draft_uid)

    def _context(self, inquiry: Inquiry) -> Context:
        """The user's earlier replies to this sender, from the Sent folder."""
        raws = self.mailbox.sent_history(inquiry.reply_address, limit=5)
        if raws is None:
            return Context()
        texts = []
        for raw in raws:
            try:
                earlier = parse(raw)
            except ParseError:
                continue
            texts.append(earlier.subject + "\n" + earlier.text)
        return Context(history=tuple(texts))

    def _screen(self, ref: MessageRef, raw: bytes) -> Pending:
        try:
            inquiry = parse(raw)
        except ParseError as exc:
            return Pending(ref, None, "", error=f"unreadable message: {exc}")
        inquiry_id = inquiry.message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
        if inquiry_id in self._ids or self.state.handled_message_id(self.account.name, inquiry_id):
            return Pending(ref, inquiry, inquiry_id, reason="already handled (same Message-ID)")
        self._ids.add(inquiry_id)
        reason = screen(
            inquiry, own_addresses=self.own, allow=self.config.screening.allow, flags=ref.flags
        )
        return Pending(ref, inquiry, inquiry_id, reason=reason or "")

    def _tag(self, uid: str, label: str) -> None:
        if not self.mailbox.add_keyword(uid, KEYWORD_PREFIX + label):
            log.debug("account %s: the server does not allow keywords", self.account.name)

    def _finish(
        self, p: Pending, decision: Decision | None = None, draft_id: str = "", draft_uid: str = ""
    ) -> None:
        inquiry = p.inquiry
        if p.error:
            action, reason = "error", p.error
        elif p.reason:
            action, reason = "skipped", p.reason
        elif decision is not None and decision.refuses:
            action, reason = "drafted", ""
        else:
            action, reason = "no_refusal", ""
        outcome = Outcome(
            uid=p.ref.uid,
            message_id=p.inquiry_id,
            action=action,
            reason=reason,
            label=decision.label if decision else "",
            lang=inquiry.lang if inquiry else "",
            scores=decision.scores if decision else None,
            evidence=decision.evidence if decision else None,
            sender=inquiry.sender_addr if inquiry else "",
            subject=inquiry.subject if inquiry else "",
            draft_message_id=draft_id,
            draft_uid=draft_uid,
        )
        if not self.dry_run:
            self.state.record(self.account.name, self.mailbox.inbox, self.uidvalidity, outcome)
        self._count(outcome)

    def _count(self, o: Outcome) -> None:
        s = self.summary
        s.seen += 1
        if o.action == "drafted":
            s.drafted[o.label] += 1
        elif o.action == "skipped":
            s.skipped[o.reason.split(" (")[0]] += 1
        elif o.action == "error":
            s.errors += 1
        else:
            s.no_refusal += 1
        level = logging.WARNING if o.action == "error" else logging.INFO
        log.log(
            level,
            "account %s: uid %s: %s%s%s",
            s.account,
            o.uid,
            o.action,
            f" {o.label}/{o.lang}" if o.action == "drafted" else "",
            f" ({o.reason})" if o.reason else "",
        )
        log.debug(
            "account %s: uid %s: from %s, subject %r, scores %s, evidence %s",
            s.account,
            o.uid,
            o.sender,
            o.subject,
            o.scores,
            o.evidence,
        )
        s.reports.append(
            Report(
                o.uid,
                o.action,
                o.reason,
                o.label,
                o.lang,
                o.subject,
                o.sender,
                o.evidence or {},
                o.scores or {},
                o.draft_uid or o.draft_message_id,
            )
        )
