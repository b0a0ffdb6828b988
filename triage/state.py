"""What was seen, decided and drafted, in SQLite; and the one-process-per-account lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from triage.errors import LockedError, StateError

SCHEMA = """
CREATE TABLE IF NOT EXISTS folders (
    account TEXT NOT NULL,
    folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL,
    since TEXT NOT NULL,            -- the cut-off of the first pass under this UIDVALIDITY
    PRIMARY KEY (account, folder)
);
CREATE TABLE IF NOT EXISTS messages (
    account TEXT NOT NULL,
    folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid TEXT NOT NULL,
    message_id TEXT NOT NULL,
    action TEXT NOT NULL,           -- drafted | no_refusal | skipped | error
    reason TEXT NOT NULL DEFAULT '',
    label TEXT NOT NULL DEFAULT '',
    lang TEXT NOT NULL DEFAULT '',
    scores TEXT NOT NULL DEFAULT '{}',
    evidence TEXT NOT NULL DEFAULT '{}',
    sender TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    draft_message_id TEXT NOT NULL DEFAULT '',
    draft_uid TEXT NOT NULL DEFAULT '',
    handled_at TEXT NOT NULL,
    PRIMARY KEY (account, folder, uidvalidity, uid)
);
CREATE INDEX IF NOT EXISTS messages_by_id ON messages (account, message_id);
CREATE TABLE IF NOT EXISTS passes (
    account TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    counts TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS passes_by_time ON passes (account, finished);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (account, handled_at);
"""


@dataclass(frozen=True)
class Cursor:
    """Where the last pass stopped in one folder."""

    uidvalidity: int
    last_uid: int
    since: datetime


@dataclass(frozen=True)
class Outcome:
    """What happened to one message: one row of `messages`."""

    uid: str
    message_id: str
    action: str
    reason: str = ""
    label: str = ""
    lang: str = ""
    scores: dict[str, float] | None = None
    evidence: dict[str, list[str]] | None = None
    sender: str = ""
    subject: str = ""
    draft_message_id: str = ""
    draft_uid: str = ""


@dataclass
class Activity:
    """What happened to one account's mail over a period, for `triage status`."""

    seen: int = 0
    drafted: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    no_refusal: int = 0
    errors: int = 0
    failed_passes: int = 0


def now() -> datetime:
    return datetime.now(UTC)


class State:
    def __init__(
        self, directory: Path, *, readonly: bool = False, any_thread: bool = False
    ) -> None:
        """`readonly` (dry runs) reads the recorded state, if any, and can never change it.

        `any_thread`: the daemon's passes run on a pool's threads, one at a time per State.
        """
        self.directory = directory
        path = directory / "state.sqlite3"
        try:
            if readonly:
                target = f"{path.as_uri()}?mode=ro" if path.exists() else ":memory:"
                self.db = sqlite3.connect(
                    target,
                    uri=True,
                    timeout=30,
                    isolation_level=None,
                    check_same_thread=not any_thread,
                )
                if not path.exists():
                    self.db.executescript(SCHEMA)
                return
            directory.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=not any_thread
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            # A record lost to a power cut is the crash case every pass survives (the draft
            # is found again by its Message-ID); a sync per commit is not worth its cost.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state database in {directory}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateError(
                f"cannot write the state database in {self.directory}: {exc}"
            ) from None

    def cursor(self, account: str, folder: str) -> Cursor | None:
        row = self.db.execute(
            "SELECT uidvalidity, last_uid, since FROM folders WHERE account=? AND folder=?",
            (account, folder),
        ).fetchone()
        return Cursor(row[0], row[1], datetime.fromisoformat(row[2])) if row else None

    def start_folder(self, account: str, folder: str, uidvalidity: int, since: datetime) -> Cursor:
        """A first pass, or a UIDVALIDITY change: every UID starts over from zero."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO folders VALUES (?, ?, ?, 0, ?)",
                (account, folder, uidvalidity, since.isoformat()),
            )
        return Cursor(uidvalidity, 0, since)

    def is_handled(self, account: str, folder: str, uidvalidity: int, uid: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM messages WHERE account=? AND folder=? AND uidvalidity=? AND uid=?",
                (account, folder, uidvalidity, uid),
            ).fetchone()
            is not None
        )

    def handled_message_id(self, account: str, message_id: str) -> bool:
        """Seen before under another UID (after a UIDVALIDITY change, or a copy)."""
        if not message_id:
            return False
        return (
            self.db.execute(
                "SELECT 1 FROM messages WHERE account=? AND message_id=?", (account, message_id)
            ).fetchone()
            is not None
        )

    def record(self, account: str, folder: str, uidvalidity: int, outcome: Outcome) -> None:
        """One message and the folder's cursor in one transaction: a crash keeps both or none."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO messages VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    account,
                    folder,
                    uidvalidity,
                    outcome.uid,
                    outcome.message_id,
                    outcome.action,
                    outcome.reason,
                    outcome.label,
                    outcome.lang,
                    json.dumps(outcome.scores or {}),
                    json.dumps(outcome.evidence or {}),
                    outcome.sender,
                    outcome.subject,
                    outcome.draft_message_id,
                    outcome.draft_uid,
                    now().isoformat(),
                ),
            )
            if outcome.uid.isdigit():
                db.execute(
                    "UPDATE folders SET last_uid = MAX(last_uid, ?) "
                    "WHERE account=? AND folder=? AND uidvalidity=?",
                    (int(outcome.uid), account, folder, uidvalidity),
                )

    def record_pass(
        self, account: str, started: datetime, ok: bool, error: str, counts: dict[str, Any]
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO passes VALUES (?, ?, ?, ?, ?, ?)",
                (
                    account,
                    started.isoformat(),
                    now().isoformat(),
                    int(ok),
                    error,
                    json.dumps(counts),
                ),
            )

    def last_pass(self, account: str, *, ok: bool) -> sqlite3.Row | None:
        """The last pass that succeeded (or failed): started, finished, error, counts."""
        self.db.row_factory = sqlite3.Row
        try:
            row: sqlite3.Row | None = self.db.execute(
                "SELECT * FROM passes WHERE account=? AND ok=? ORDER BY finished DESC LIMIT 1",
                (account, int(ok)),
            ).fetchone()
            return row
        finally:
            self.db.row_factory = None

    def activity(self, account: str, since: datetime) -> Activity:
        """Messages handled, and passes failed, since `since`."""
        after = since.astimezone(UTC).isoformat()
        found = Activity()
        rows = self.db.execute(
            "SELECT action, label, reason, COUNT(*) FROM messages "
            "WHERE account=? AND handled_at>=? GROUP BY action, label, reason",
            (account, after),
        )
        for action, label, reason, count in rows:
            found.seen += count
            if action == "drafted":
                found.drafted[label] += count
            elif action == "skipped":
                found.skipped[reason.split(" (")[0]] += count
            elif action == "error":
                found.errors += count
            else:
                found.no_refusal += count
        (found.failed_passes,) = self.db.execute(
            "SELECT COUNT(*) FROM passes WHERE account=? AND ok=0 AND finished>=?",
            (account, after),
        ).fetchone()
        return found

    def recent(self, account: str | None, limit: int) -> list[sqlite3.Row]:
        """The last `limit` decisions, newest first, of one account or all."""
        self.db.row_factory = sqlite3.Row
        try:
            return list(
                self.db.execute(
                    "SELECT * FROM messages WHERE (? IS NULL OR account=?) "
                    "ORDER BY handled_at DESC LIMIT ?",
                    (account, account, limit),
                )
            )
        finally:
            self.db.row_factory = None

    def messages(self, account: str) -> list[sqlite3.Row]:
        self.db.row_factory = sqlite3.Row
        try:
            return list(
                self.db.execute(
                    "SELECT * FROM messages WHERE account=? ORDER BY handled_at", (account,)
                )
            )
        finally:
            self.db.row_factory = None


def _lock_path(directory: Path, account: str) -> Path:
    return directory / "locks" / (re.sub(r"[^\w.-]", "_", account) + ".lock")


def lock_holder(directory: Path, account: str) -> str | None:
    """Who holds the account's lock ("pid N"), or None when no process does."""
    try:
        handle = _lock_path(directory, account).open(encoding="utf-8")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


@contextlib.contextmanager
def account_lock(directory: Path, account: str, holder: str = "") -> Iterator[None]:
    """Refuse, rather than race, a second process working on the same account.

    `holder` names this process in the refusal another one gets (default: "pid N").
    """
    locks = directory / "locks"
    try:
        locks.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = open(  # noqa: SIM115 (closed by the with below)
            _lock_path(directory, account), "a+"
        )
    except OSError as exc:
        raise StateError(f"cannot create a lock file in {locks}: {exc}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "another process"
            raise LockedError(
                f"account {account!r} is being processed by {other}; "
                "wait for it to finish or stop it first"
            ) from None
        handle.truncate(0)
        handle.write(holder or f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
