"""One account inside the daemon: its passes, the connection kept between them, its IDLE
watcher, and its retries. The scheduler (scheduler.py) decides when; this decides how.

Every pass goes through `runner.run_account`, the code path of `triage run --once`, so the
exactly-once rules are the same. Faults never escape: a network fault is retried with
exponential backoff and jitter, refused credentials (or a broken password source) wait
`auth_retry` seconds and are explained once, and a bug in one pass is logged with its
traceback while the other accounts go on.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from triage import runner
from triage.classify import Classifier
from triage.config import Account, Config
from triage.drafting import Drafter
from triage.errors import AuthError, ConfigError, MailboxError, TriageError
from triage.mailbox import Listing, Mailbox
from triage.state import Cursor, State

log = logging.getLogger(__name__)

#: An IDLE connection that lasted this long was a success: its loss starts backoff afresh.
STEADY = 60.0
#: The IDLE watcher looks at its stop flag this often (seconds).
IDLE_SLICE = 1.0


class Backoff:
    """Exponential backoff with jitter: about 1, 2, 4... seconds, never above `ceiling`.

    The jitter (each delay drawn between half and all of it) keeps accounts on the same
    server, and many clients after an outage, from reconnecting in step.
    """

    def __init__(self, ceiling: float, first: float = 1.0) -> None:
        self.ceiling, self.first, self.failures = ceiling, first, 0

    def next(self) -> float:
        delay = min(self.ceiling, self.first * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


class _Borrowed:
    """The kept store, lent to one pass: `close` at the end of the pass keeps it open; every
    other call goes to the store.

    A kept IMAP connection lists with `list_new_kept` (no re-SELECT when nothing is new). If
    it died since the last pass (server restart, idle timeout), listing is the first command
    and reads nothing, so it is retried once on a new connection from `reopen`.
    """

    def __init__(self, store: Mailbox, *, kept: bool, reopen: Callable[[], Mailbox]) -> None:
        self.store, self.kept, self.reopen = store, kept, reopen

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def list_new(self, cursor: Cursor | None, since: datetime) -> Listing:
        list_kept = getattr(self.store, "list_new_kept", None)
        if not self.kept or list_kept is None:
            return self.store.list_new(cursor, since)
        try:
            listing: Listing = list_kept(cursor, since)
            return listing
        except MailboxError as exc:
            log.info("%s; the kept connection is gone, opening a new one", exc)
            self.store = self.reopen()
            return self.store.list_new(cursor, since)

    def close(self) -> None:
        """Kept for the next pass; the worker closes it."""


class Worker:
    """An account's passes (`run`, the scheduler's job) and its IDLE watcher thread."""

    def __init__(
        self,
        config: Config,
        account: Account,
        classifier: Classifier,
        drafter: Drafter,
        *,
        schedule: Callable[[float], None],
        opener: Callable[[Account], Mailbox] = runner.open_mailbox,
    ) -> None:
        """`schedule(delay)` asks the scheduler for a pass in `delay` seconds."""
        self.config, self.account = config, account
        self.classifier, self.drafter = classifier, drafter
        self.schedule, self.opener = schedule, opener
        self.name = account.name
        self.state = State(config.state_path, any_thread=True)
        self.stopping = threading.Event()
        self._cond = threading.Condition()
        self._running = False
        self._wanted = False
        self._first_pass = threading.Event()
        self._store: Mailbox | None = None
        self._stale = False
        self._refused_login = False
        self._backoff = Backoff(config.daemon.backoff_max)
        self._blocked_until = 0.0  # monotonic: refused credentials wait until then
        self._explained = ""  # the refusal already explained, so it is said once
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        if self.account.idle and not self.account.is_maildir:
            self._watcher = threading.Thread(target=self._watch, name=f"idle {self.name}")
            self._watcher.daemon = True
            self._watcher.start()

    def trigger(self) -> None:
        """New mail: a pass now, or right after the one running."""
        with self._cond:
            self._wanted = True
            if self._running:
                return
        self.schedule(0)

    def after_sleep(self) -> None:
        """The computer slept: the kept connection is likely dead, and mail may be waiting."""
        self._stale = True
        self.trigger()

    def stop(self) -> None:
        """A running pass ends after its current message; the watcher within a second."""
        self.stopping.set()

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait for the running pass, if any, to end; False if it is still running."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._running, timeout)

    def close(self, timeout: float) -> None:
        """After `stop` and `wait_idle`: log out, and give the watcher `timeout` to end."""
        self._drop(politely=True)
        if self._watcher is not None:
            self._watcher.join(timeout)
        self.state.close()

    # The passes ---------------------------------------------------------------------------

    def run(self) -> None:
        """The scheduler's job: one pass, and another while new mail came in during it."""
        with self._cond:
            if self._running:
                self._wanted = True
                return
            self._running = True
        try:
            again = True
            while again:
                with self._cond:
                    self._wanted = False
                ok = self._pass()
                with self._cond:
                    again = ok and self._wanted and not self.stopping.is_set()
        finally:
            self._first_pass.set()
            with self._cond:
                self._running = False
                self._cond.notify_all()

    def _pass(self) -> bool:
        """One pass; False when it failed (and the retry is scheduled) or did not run."""
        if self.stopping.is_set() or time.monotonic() < self._blocked_until:
            return False
        self._refused_login = False
        try:
            summary = runner.run_account(
                self.config,
                self.account,
                self.state,
                self.classifier,
                self.drafter,
                opener=self._open,
                lock=False,
                should_stop=self.stopping.is_set,
            )
        except ConfigError as exc:  # a password source that fails: the user must act
            self._refuse(str(exc))
            return False
        except TriageError as exc:
            log.error("account %s: %s", self.name, exc)
            self._retry()
            return False
        except Exception:
            log.exception("account %s: unexpected error; the pass will be retried", self.name)
            self._retry()
            return False
        if summary.failure:
            if self._refused_login:
                self._refuse(summary.failure)
            else:
                self._retry()
            return False
        self._backoff.reset()
        self._explained = ""
        done = runner.summarize([summary])[0].partition(": ")[2]
        log.log(logging.INFO if summary.seen else logging.DEBUG, "account %s: %s", self.name, done)
        return True

    def _retry(self) -> None:
        self._drop()
        delay = self._backoff.next()
        log.warning("account %s: next attempt in %.0f s", self.name, delay)
        self.schedule(delay)

    def _refuse(self, reason: str) -> None:
        """Credentials refused: retrying soon cannot help, and saying it twice does not."""
        self._drop()
        wait = self.config.daemon.auth_retry
        self._blocked_until = time.monotonic() + wait
        if reason != self._explained:
            self._explained = reason
            log.error(
                "%s. Not retrying for %.0f minutes: fix it, then send SIGHUP to the daemon "
                "(or restart it) to retry at once",
                reason,
                wait / 60,
            )
        self.schedule(wait)

    def _open(self, account: Account) -> Mailbox:
        """The opener given to `run_account`: the store kept from the last pass, or a new one."""
        if self._stale:
            self._drop()
        kept = self._store is not None
        lent = _Borrowed(self._store or self._reopen(), kept=kept, reopen=self._reopen)
        return cast(Mailbox, lent)

    def _reopen(self) -> Mailbox:
        self._drop()
        try:
            store = self.opener(self.account)
        except AuthError:
            self._refused_login = True
            raise
        self._store, self._stale = store, False
        return store

    def _drop(self, *, politely: bool = False) -> None:
        store, self._store = self._store, None
        if store is not None:
            _close(store, politely=politely)

    # The IDLE watcher ---------------------------------------------------------------------

    def _watch(self) -> None:
        """Thread: IDLE on the inbox and start a pass when mail arrives; reconnect on faults."""
        while not self._first_pass.wait(IDLE_SLICE):
            if self.stopping.is_set():
                return
        backoff = Backoff(self.config.daemon.backoff_max)
        while not self.stopping.is_set():
            blocked = self._blocked_until - time.monotonic()
            if blocked > 0:
                self.stopping.wait(min(blocked, 5 * IDLE_SLICE))
                continue
            try:
                store = self.opener(self.account)
            except AuthError:
                self.trigger()  # the pass explains it and blocks both
                self.stopping.wait(backoff.next())
                continue
            except TriageError as exc:
                delay = backoff.next()
                # Said once per outage (the passes report it too), then only at DEBUG.
                level = logging.WARNING if backoff.failures == 1 else logging.DEBUG
                log.log(level, "%s; IDLE again in %.0f s", exc, delay)
                self.stopping.wait(delay)
                continue
            connected = time.monotonic()
            try:
                if not self._idle_on(store):
                    return
            except Exception as exc:
                if not isinstance(exc, TriageError):
                    log.exception("account %s: unexpected error in IDLE", self.name)
                _close(store)
                if time.monotonic() - connected > STEADY:
                    backoff.reset()
                delay = backoff.next()
                log.warning(
                    "account %s: IDLE connection lost (%s); again in %.0f s", self.name, exc, delay
                )
                self.stopping.wait(delay)

    def _idle_on(self, store: Mailbox) -> bool:
        """IDLE until stopped; False when IDLE is not possible here (polling goes on)."""
        from triage.imap import ImapMailbox

        if not isinstance(store, ImapMailbox) or not store.can_idle:
            log.info(
                "account %s: no IDLE on this server; polling every %.0f s",
                self.name,
                self.account.poll_every,
            )
            store.close()
            return False
        first = True
        while not self.stopping.is_set():
            new = store.idle_wait(IDLE_SLICE)
            if first:
                # IDLE is on; a pass now catches what came before it started.
                log.info(
                    "account %s: IDLE on %s: new mail starts a pass at once", self.name, store.inbox
                )
            if new or first:
                self.trigger()
            first = False
        store.close()
        return True


def _close(store: Mailbox, *, politely: bool = False) -> None:
    """Log out (`politely`), or drop a connection that failed without waiting for it."""
    abort = None if politely else getattr(store, "abort", None)
    try:
        (abort or store.close)()
    except Exception:
        log.debug("account %s: closing the connection failed", store.name, exc_info=True)
