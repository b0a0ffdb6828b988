"""The mail store as the pipeline sees it: a small protocol with IMAP and Maildir behind it.

Safety contract: nothing here sends, deletes, expunges, moves or rewrites a message. A store
can list and read the inbox, search and append to Drafts, and add keywords. That is all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from triage.state import Cursor


@dataclass(frozen=True)
class MessageRef:
    """A message in the inbox before its body is read."""

    uid: str
    size: int = 0
    flags: frozenset[str] = field(default_factory=frozenset)
    arrived: datetime | None = None


@dataclass(frozen=True)
class Listing:
    uidvalidity: int
    #: True when the recorded cursor no longer applies (first pass or UIDVALIDITY change).
    restarted: bool
    refs: list[MessageRef]


class Mailbox(Protocol):
    name: str
    inbox: str

    def list_new(self, cursor: Cursor | None, since: datetime) -> Listing:
        """Inbox messages after the cursor; all since `since` when the cursor does not apply."""
        ...

    def fetch(self, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        """Full bodies, read without setting \\Seen."""
        ...

    def find_drafts(self, message_ids: Sequence[str]) -> dict[str, str]:
        """Drafts already in the Drafts folder, by Message-ID -> their UID (or key)."""
        ...

    def append_draft(self, raw: bytes, *, seen: bool, when: datetime) -> str:
        """Store a draft with the \\Draft flag; returns its UID when the store tells it."""
        ...

    def add_keyword(self, uid: str, keyword: str) -> bool:
        """Tag an inbox message; False when the store does not allow keywords."""
        ...

    def sent_history(self, address: str, limit: int) -> list[bytes] | None:
        """The newest messages the user sent to `address`; None when there is no Sent folder."""
        ...

    def folder_messages(self, folder: str) -> list[bytes]:
        """Every message of a folder, read-only (labelled folders for training)."""
        ...

    def folders(self) -> dict[str, str]:
        """Role -> folder name, for `triage check`."""
        ...

    def close(self) -> None: ...
