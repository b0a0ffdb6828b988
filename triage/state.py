"""What was seen, decided and drafted, in SQLite; and the one-process-per-account lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
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


def now() -> datetime:
    return datetime.now(UTC)


class State:
    def __init__(self, directory: Path, *, readonly: bool = False) -> None:
        """`readonly` (dry runs) reads the recorded state, if any, and can never change it."""
        self.directory = directory
        path = directory / "state.sqlite3"
        try:
            if readonly:
                target = f"{path.as_uri()}?mode=ro" if path.exists() else ":memory:"
                self.db = sqlite3.connect(target, uri=True, timeout=30, isolation_level=None)
                if not path.exists():
                    self.db.executescript(SCHEMA)
                return
            directory.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
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


@contextlib.contextmanager
def account_lock(directory: Path, account: str) -> Iterator[None]:
    """Refuse, rather than race, a second process working on the same account."""
    locks = directory / "locks"
    try:
        locks.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = open(  # noqa: SIM115 (closed by the with below)
            locks / (re.sub(r"[^\w.-]", "_", account) + ".lock"), "a+"
        )
    except OSError as exc:
        raise StateError(f"cannot create a lock file in {locks}: {exc}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LockedError(
                f"account {account!r} is being processed by {holder}; "
                "wait for it to finish or stop it first"
            ) from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
