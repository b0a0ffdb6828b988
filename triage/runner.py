"""Passes over the configured accounts: what `triage run --once` and the daemon call."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from triage.classify import Classifier
from triage.config import Account, Config
from triage.drafting import Drafter
from triage.errors import LockedError, MailboxError, ModelError, TriageError
from triage.mailbox import Mailbox
from triage.pipeline import Pass, Summary
from triage.state import State, account_lock

if TYPE_CHECKING:
    from triage.model import Model

log = logging.getLogger(__name__)


def open_mailbox(account: Account) -> Mailbox:
    if account.is_maildir:
        from triage.maildir import MaildirMailbox

        return MaildirMailbox(account)
    from triage.imap import ImapMailbox

    return ImapMailbox(account)


def build_classifier(config: Config) -> Classifier:
    """Rules plus the active model (loaded only when there is something to classify)."""
    from triage.classify import HybridClassifier, RuleClassifier
    from triage.context import WorkingTime

    rules = RuleClassifier({"en": config.rules.en, "fr": config.rules.fr})
    if not config.model.enabled:
        return rules

    def load() -> Model:
        from triage import registry

        try:
            from triage import model
        except ImportError as exc:  # a broken or partial install
            raise ModelError(f"cannot import the model's libraries ({exc})") from None
        return model.load(registry.active(config.state_path).directory)

    working = WorkingTime.parse(
        config.timezone, config.working_hours, config.working_days, config.path
    )
    return HybridClassifier(rules, load, working)


def run_account(
    config: Config,
    account: Account,
    state: State,
    classifier: Classifier,
    drafter: Drafter,
    *,
    dry_run: bool = False,
    opener: Callable[[Account], Mailbox] = open_mailbox,
    lock: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> Summary:
    """One pass over one account. Mailbox and lock errors end up in `summary.failure`.

    `lock=False` is for a caller that already holds the account lock (the daemon), and
    `should_stop` lets it end a pass between two messages.
    """
    started = datetime.now().astimezone()
    summary = Summary(account.name)
    try:
        guard = (
            account_lock(config.state_path, account.name)
            if lock and not dry_run
            else contextlib.nullcontext()
        )
        with guard:
            mailbox = opener(account)
            try:
                runner = Pass(
                    config,
                    account,
                    mailbox,
                    state,
                    classifier,
                    drafter,
                    dry_run=dry_run,
                    should_stop=should_stop,
                )
                summary = runner.summary
                runner.run()
            finally:
                mailbox.close()
    except (MailboxError, LockedError) as exc:
        summary.failure = str(exc)
        log.error("%s", exc)
    if not dry_run:
        state.record_pass(
            account.name, started, not summary.failure, summary.failure, summary.counts()
        )
    return summary


def run_once(
    config: Config,
    *,
    account: str | None = None,
    dry_run: bool = False,
    classifier: Classifier | None = None,
    opener: Callable[[Account], Mailbox] = open_mailbox,
) -> list[Summary]:
    """One pass over each configured account (or one); a failing account never stops the rest."""
    accounts = [config.account(account)] if account else list(config.accounts)
    if not accounts:
        raise TriageError(f"{config.path}: no [[accounts]] configured")
    classifier = classifier or build_classifier(config)
    drafter = Drafter(config.identity, config.drafting)
    state = State(config.state_path, readonly=dry_run)
    try:
        return [
            run_account(config, acct, state, classifier, drafter, dry_run=dry_run, opener=opener)
            for acct in accounts
        ]
    finally:
        state.close()


def summarize(summaries: Iterable[Summary]) -> list[str]:
    """The lines `triage run` prints: one per account."""
    lines = []
    for s in summaries:
        if s.failure:
            lines.append(f"{s.account}: FAILED: {s.failure}")
            if not s.seen:
                continue
        drafted = ", ".join(f"{k} {v}" for k, v in sorted(s.drafted.items())) or "0"
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(s.skipped.items())) or "0"
        lines.append(
            f"{s.account}: seen {s.seen}; drafted {drafted}; skipped {skipped}; "
            f"no refusal {s.no_refusal}; errors {s.errors}"
        )
    return lines
