"""`triage daemon`: the only APScheduler import. One job per account, the account locks for
the daemon's whole life, signals (SIGTERM/SIGINT stop, SIGHUP reloads), and waking from sleep.

What a pass does, and how faults are retried, is in worker.py; this module only says when.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from triage import config as configuration
from triage import runner
from triage.config import Account, Config
from triage.drafting import Drafter
from triage.errors import LockedError, TriageError
from triage.state import account_lock
from triage.worker import Worker

log = logging.getLogger(__name__)

#: Seconds a pass in progress gets, after SIGTERM, to finish the message it is on.
STOP_GRACE = 10.0
#: The wall clock ran this much further than the monotonic clock: the computer slept.
SLEEP_JUMP = 30.0
#: How often the main thread looks at signals and clocks.
TICK = 0.25


class Daemon:
    def __init__(self, config: Config, *, only: str | None = None) -> None:
        """`only`: the name of the one account to serve (default: all)."""
        self.config, self.only = config, only
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max(8, len(config.accounts)))},
            timezone=UTC,
        )
        self.workers: dict[str, Worker] = {}
        self.locks: dict[str, contextlib.ExitStack] = {}
        self._stop = False
        self._reload = False

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT; 0 then. A lock held elsewhere raises LockedError."""
        accounts = self._accounts(self.config)
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        try:
            for account in accounts:
                self._lock(account.name)
            self.scheduler.start()
            self._start(self.config, accounts)
            log.info("daemon started (pid %d): %s", os.getpid(), _describe(accounts))
            self._loop()
            log.info("stopping")
        finally:
            if not self._stop_workers(STOP_GRACE):
                # Exiting is then like a crash, which every pass survives: its next start
                # resumes at the first message not recorded. The locks go with the process.
                log.warning("a pass is still waiting for its server; exiting anyway")
                logging.shutdown()
                os._exit(0)
            with contextlib.suppress(Exception):
                self.scheduler.shutdown(wait=False)
            for name in list(self.locks):
                self._unlock(name)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        log.info("daemon stopped")
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Only flags: the main loop acts on them (a handler must not take locks)."""
        if signum == signal.SIGHUP:
            self._reload = True
        else:
            self._stop = True

    def _loop(self) -> None:
        offset = time.time() - time.monotonic()
        while not self._stop:
            time.sleep(TICK)
            if self._reload:
                self._reload = False
                self._reload_config()
            now = time.time() - time.monotonic()
            if now - offset > SLEEP_JUMP:
                log.info("the computer slept about %.0f minutes; catching up", (now - offset) / 60)
                for worker in self.workers.values():
                    worker.after_sleep()
            offset = now

    def _accounts(self, config: Config) -> list[Account]:
        accounts = [config.account(self.only)] if self.only else list(config.accounts)
        if not accounts:
            raise TriageError(f"{config.path}: no [[accounts]] configured")
        return accounts

    def _start(self, config: Config, accounts: list[Account]) -> None:
        classifier = runner.build_classifier(config)
        drafter = Drafter(config.identity, config.drafting)
        for account in accounts:
            if account.name not in self.locks:
                continue
            worker = Worker(
                config, account, classifier, drafter, schedule=self._scheduling(account.name)
            )
            self.workers[account.name] = worker
            self.scheduler.add_job(
                worker.run,
                "interval",
                seconds=account.poll_every,
                id=account.name,
                name=f"pass {account.name}",
                max_instances=1,
                coalesce=True,
                # No limit: after sleep or downtime the missed run still happens (once); the
                # default of one second would silently drop it.
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),
            )
            worker.start()

    def _scheduling(self, job_id: str) -> Callable[[float], None]:
        def schedule(delay: float) -> None:
            when = datetime.now(UTC) + timedelta(seconds=delay)
            with contextlib.suppress(JobLookupError):  # the account was just removed
                self.scheduler.modify_job(job_id, next_run_time=when)

        return schedule

    def _stop_workers(self, grace: float | None) -> bool:
        """Stop every worker; False if a pass did not end within `grace` seconds."""
        workers = list(self.workers.values())
        for worker in workers:
            worker.stop()
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(worker.name)
        deadline = None if grace is None else time.monotonic() + grace
        ended = True
        for worker in workers:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if worker.wait_idle(left):
                worker.close(timeout=2.0)
            else:
                ended = False
        self.workers = {}
        return ended

    def _reload_config(self) -> None:
        """SIGHUP: the new file replaces the old one, or nothing changes."""
        try:
            new = configuration.load(Path(self.config.path))
            accounts = self._accounts(new)
            if new.state_path != self.config.state_path:
                raise TriageError("state_dir cannot change while running: restart the daemon")
            runner.build_classifier(new)
            Drafter(new.identity, new.drafting)
        except TriageError as exc:
            log.error("reload: %s; the running configuration stays", exc)
            return
        self._stop_workers(None)
        names = {account.name for account in accounts}
        for name in set(self.locks) - names:
            self._unlock(name)
        for name in names - set(self.locks):
            try:
                self._lock(name)
            except LockedError as exc:
                log.error("reload: %s", exc)
        self.config = new
        self._start(new, accounts)
        log.info("configuration reloaded: %s", _describe(accounts))

    def _lock(self, name: str) -> None:
        stack = contextlib.ExitStack()
        stack.enter_context(
            account_lock(
                self.config.state_path, name, holder=f"the triage daemon (pid {os.getpid()})"
            )
        )
        self.locks[name] = stack

    def _unlock(self, name: str) -> None:
        stack = self.locks[name]
        del self.locks[name]
        stack.close()


def _describe(accounts: list[Account]) -> str:
    return "; ".join(
        f"{a.name} every {a.poll_every:g} s"
        + (", IDLE when offered" if a.idle and not a.is_maildir else "")
        for a in accounts
    )


def serve(config: Config, *, account: str | None = None) -> int:
    return Daemon(config, only=account).serve()
