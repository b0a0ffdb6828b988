"""A local Maildir (as synced by mbsync or offlineimap) as a store: drafts get the D flag."""

from __future__ import annotations

import email.parser
import email.policy
import mailbox
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from triage.config import Account
from triage.errors import MailboxError
from triage.mailbox import Listing, MessageRef
from triage.state import Cursor

#: Maildir++ sub-folders first (`.Drafts` inside the inbox), then siblings (mbsync layouts).
_DRAFTS_CANDIDATES = (
    ".Drafts",
    ".Brouillons",
    ".INBOX.Drafts",
    "../Drafts",
    "../Brouillons",
    "Drafts",
    "Brouillons",
)
_SENT_NAMES = ("Sent", "Envoyés", "Envoyes", "Sent Items", "INBOX.Sent")
_FLAG_NAMES = {"S": "\\Seen", "R": "\\Answered", "F": "\\Flagged", "D": "\\Draft", "T": "\\Deleted"}


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


class MaildirMailbox:
    def __init__(self, account: Account) -> None:
        self.name = account.name
        self.inbox = "INBOX"
        self.root = Path(account.maildir).expanduser()
        if not _is_maildir(self.root):
            raise MailboxError(
                f"account {self.name!r}: {self.root} is not a Maildir "
                "(it needs cur/, new/ and tmp/)"
            )
        candidates = [account.drafts_folder] if account.drafts_folder else _DRAFTS_CANDIDATES
        for candidate in candidates:
            path = (self.root / candidate).resolve()
            if _is_maildir(path):
                self.drafts_path = path
                break
        else:
            raise MailboxError(
                f"account {self.name!r}: no Drafts Maildir found beside {self.root} "
                "(tried .Drafts, ../Drafts...); set drafts_folder"
            )
        self.drafts = mailbox.Maildir(self.drafts_path, factory=None, create=False)
        #: Message key -> file, from the last listing (fetch reads from it).
        self._paths: dict[str, Path] = {}

    def _scan(self, folder: Path) -> Iterator[tuple[str, Path, str]]:
        """(key, path, flag letters) for each message, without reading it."""
        for sub in ("new", "cur"):
            with os.scandir(folder / sub) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.is_file():
                        continue
                    key, _, info = entry.name.partition(":")
                    flags = info[2:] if info.startswith("2,") else ""
                    yield key, Path(entry.path), flags

    def list_new(self, cursor: Cursor | None, since: datetime) -> Listing:
        if cursor is not None:
            since = cursor.since
        refs = []
        self._paths = {}
        for key, path, letters in self._scan(self.root):
            self._paths[key] = path
            try:
                stat = path.stat()
            except FileNotFoundError:  # moved between new/ and cur/ by a mail client
                continue
            arrived = datetime.fromtimestamp(stat.st_mtime, UTC)
            if arrived < since:
                continue
            flags = frozenset(_FLAG_NAMES[c] for c in letters if c in _FLAG_NAMES)
            refs.append(MessageRef(key, stat.st_size, flags, arrived))
        refs.sort(key=lambda r: (r.arrived or since, r.uid))
        return Listing(0, cursor is None, refs)

    def fetch(self, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        for ref in refs:
            raw = self._read(ref.uid)
            if raw is not None:
                yield ref, raw

    def _read(self, key: str) -> bytes | None:
        """By the path of the last listing; a file a mail client renamed since (new/ to cur/,
        a flag change) is looked up again once. None: the message is gone."""
        for attempt in range(2):
            path = self._paths.get(key)
            if path is not None:
                try:
                    return path.read_bytes()
                except FileNotFoundError:
                    pass
            if attempt == 0:
                self._paths = {k: p for k, p, _ in self._scan(self.root)}
        return None

    def find_drafts(self, message_ids: Sequence[str]) -> dict[str, str]:
        wanted = set(message_ids)
        found: dict[str, str] = {}
        parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        for key, path, _ in self._scan(self.drafts_path):
            if not wanted:
                break
            with path.open("rb") as handle:
                message_id = str(parser.parse(handle).get("Message-ID", "")).strip()
            if message_id in wanted:
                found[message_id] = key
                wanted.discard(message_id)
        return found

    def append_draft(self, raw: bytes, *, seen: bool, when: datetime) -> str:
        message = mailbox.MaildirMessage(raw.replace(b"\r\n", b"\n"))
        message.set_subdir("cur")
        message.set_flags("DS" if seen else "D")
        message.set_date(when.timestamp())
        try:
            return str(self.drafts.add(message))
        except OSError as exc:
            raise MailboxError(
                f"account {self.name!r}: cannot write to {self.drafts_path}: {exc}"
            ) from None

    def add_keyword(self, uid: str, keyword: str) -> bool:
        return False  # Maildir has no portable keywords; the draft is what matters

    def _folder(self, name: str) -> Path | None:
        for candidate in (f".{name}", f"../{name}", name):
            path = (self.root / candidate).resolve()
            if _is_maildir(path):
                return path
        return None

    def sent_history(self, address: str, limit: int) -> list[bytes] | None:
        sent = next((p for n in _SENT_NAMES if (p := self._folder(n)) is not None), None)
        if sent is None or not address:
            return None
        parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        found: list[tuple[float, Path]] = []
        for _, path, _ in self._scan(sent):
            with path.open("rb") as handle:
                to = " ".join(str(v) for v in parser.parse(handle).get_all("To", []))
            if address.lower() in to.lower():
                found.append((path.stat().st_mtime, path))
        return [p.read_bytes() for _, p in sorted(found)[-limit:]]

    def folder_messages(self, folder: str) -> list[bytes]:
        path = self._folder(folder)
        if path is None:
            raise MailboxError(
                f"account {self.name!r}: no Maildir folder {folder!r} in {self.root}"
            )
        return [p.read_bytes() for _, p, _ in sorted(self._scan(path))]

    def folders(self) -> dict[str, str]:
        return {"inbox": str(self.root), "drafts": str(self.drafts_path)}

    def close(self) -> None:
        return None
