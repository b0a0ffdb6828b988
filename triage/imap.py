"""The IMAP store: the only module that imports imapclient."""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import DRAFTS

from triage import credentials
from triage.config import Account, account_port
from triage.errors import AuthError, MailboxError
from triage.mailbox import Listing, MessageRef
from triage.state import Cursor

log = logging.getLogger(__name__)

#: Tried in order when no folder carries the \Drafts SPECIAL-USE flag.
DRAFTS_NAMES = (
    "Drafts",
    "Brouillons",
    "[Gmail]/Drafts",
    "[Gmail]/Brouillons",
    "INBOX.Drafts",
    "INBOX.Brouillons",
    "INBOX/Drafts",
    "Draft",
    "Entwürfe",
)
_NETWORK_ERRORS = (OSError, ssl.SSLError, socket.timeout, IMAPClientError)


def tls_context(account: Account) -> ssl.SSLContext:
    """Certificate and host name checks always on; a CA file only adds a trusted root."""
    try:
        return ssl.create_default_context(cafile=account.tls_ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise MailboxError(f"account {account.name!r}: cannot use tls_ca_file: {exc}") from None


class ImapMailbox:
    def __init__(self, account: Account) -> None:
        self.name = account.name
        self.inbox = account.inbox
        self.account = account
        self._selected: tuple[str, bool] | None = None
        self._uidvalidity = 0
        self._keywords_allowed = False
        self.client = self._connect()
        try:
            self.drafts = self._find_drafts_folder()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> imapclient.IMAPClient:
        account = self.account
        host, port = account.host, account_port(account)
        where = f"account {account.name!r} ({host}:{port})"
        context = tls_context(account)
        try:
            client = imapclient.IMAPClient(
                host,
                port=port,
                ssl=account.security == "tls",
                ssl_context=context,
                timeout=account.timeout,
            )
        except ssl.SSLCertVerificationError as exc:
            raise MailboxError(
                f"{where}: TLS certificate not trusted ({exc.verify_message}); "
                "set tls_ca_file for a self-signed server"
            ) from None
        except _NETWORK_ERRORS as exc:
            raise MailboxError(f"{where}: cannot connect: {exc}") from None
        try:
            if account.security == "starttls":
                client.starttls(context)
            client.login(account.username, credentials.password(account))
        except LoginError:
            _quietly_close(client)
            raise AuthError(f"{where}: the server refused the username or password") from None
        except ssl.SSLCertVerificationError as exc:
            _quietly_close(client)
            raise MailboxError(
                f"{where}: TLS certificate not trusted ({exc.verify_message}); "
                "set tls_ca_file for a self-signed server"
            ) from None
        except _NETWORK_ERRORS as exc:
            _quietly_close(client)
            raise MailboxError(f"{where}: {exc}") from None
        except BaseException:
            _quietly_close(client)
            raise
        return client

    def _find_drafts_folder(self) -> str:
        listed = self._call(self.client.list_folders)
        names = {name for _, _, name in listed}
        if self.account.drafts_folder:
            if self.account.drafts_folder not in names:
                raise MailboxError(
                    f"account {self.name!r}: drafts_folder "
                    f"{self.account.drafts_folder!r} does not exist on the server"
                )
            return self.account.drafts_folder
        for flags, _, name in listed:
            if DRAFTS in flags:
                return str(name)
        lowered = {str(n).lower(): str(n) for n in names}
        for candidate in DRAFTS_NAMES:
            if candidate.lower() in lowered:
                return lowered[candidate.lower()]
        raise MailboxError(
            f"account {self.name!r}: no Drafts folder found (no \\Drafts flag, no "
            "usual name); set drafts_folder in the config"
        )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _NETWORK_ERRORS as exc:
            self._selected = None
            raise MailboxError(f"account {self.name!r}: {type(exc).__name__}: {exc}") from None

    def _select(self, folder: str, readonly: bool) -> dict[bytes, Any]:
        if self._selected == (folder, readonly):
            return {}
        info: dict[bytes, Any] = self._call(self.client.select_folder, folder, readonly=readonly)
        self._selected = (folder, readonly)
        if not readonly:
            self._keywords_allowed = b"\\*" in info.get(b"PERMANENTFLAGS", ())
        if folder == self.inbox:
            uidvalidity = int(info.get(b"UIDVALIDITY", 0))
            if self._uidvalidity and uidvalidity != self._uidvalidity:
                raise MailboxError(
                    f"account {self.name!r}: UIDVALIDITY of {folder} changed "
                    "during the pass; the next pass starts over"
                )
            self._uidvalidity = uidvalidity
        return info

    def list_new(self, cursor: Cursor | None, since: datetime) -> Listing:
        self._selected = None
        info = self._select(self.inbox, readonly=True)
        uidvalidity = int(info.get(b"UIDVALIDITY", 0))
        restarted = cursor is None or cursor.uidvalidity != uidvalidity
        if not restarted and cursor is not None:
            since = cursor.since
        if restarted or cursor is None or cursor.last_uid == 0:
            uids = self._call(self.client.search, ["SINCE", since.date()])
        else:
            # `UID SEARCH UID n:*` answers with the last UID even when nothing is new.
            uids = [
                u
                for u in self._call(self.client.search, ["UID", f"{cursor.last_uid + 1}:*"])
                if u > cursor.last_uid
            ]
        refs: list[MessageRef] = []
        for start in range(0, len(uids), 500):
            chunk = sorted(uids)[start : start + 500]
            data = self._call(self.client.fetch, chunk, ["RFC822.SIZE", "FLAGS", "INTERNALDATE"])
            for uid in chunk:
                item = data.get(uid)
                if item is None:  # expunged meanwhile
                    continue
                arrived = item.get(b"INTERNALDATE")
                if isinstance(arrived, datetime) and arrived.tzinfo is None:
                    arrived = arrived.astimezone()  # imapclient gives local naive time
                if isinstance(arrived, datetime) and arrived < since:
                    continue
                flags = frozenset(_text(f) for f in item.get(b"FLAGS", ()))
                refs.append(MessageRef(str(uid), int(item.get(b"RFC822.SIZE", 0)), flags, arrived))
        return Listing(uidvalidity, restarted, refs)

    def fetch(self, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        batch = max(1, self.account.fetch_batch)
        for start in range(0, len(refs), batch):
            chunk = refs[start : start + batch]
            self._select(self.inbox, readonly=True)
            data = self._call(self.client.fetch, [int(r.uid) for r in chunk], ["BODY.PEEK[]"])
            for ref in chunk:
                body = data.get(int(ref.uid), {}).get(b"BODY[]")
                if body is not None:
                    yield ref, bytes(body)

    def find_drafts(self, message_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        if not message_ids:
            return found
        self._select(self.drafts, readonly=True)
        for message_id in message_ids:
            uids = self._call(self.client.search, ["HEADER", "Message-ID", message_id])
            if uids:
                found[message_id] = str(max(uids))
        return found

    def append_draft(self, raw: bytes, *, seen: bool, when: datetime) -> str:
        flags = [b"\\Draft", b"\\Seen"] if seen else [b"\\Draft"]
        response = self._call(self.client.append, self.drafts, raw, flags=flags, msg_time=when)
        match = re.search(rb"APPENDUID \d+ (\d+)", response or b"")
        return match.group(1).decode() if match else ""

    def add_keyword(self, uid: str, keyword: str) -> bool:
        self._select(self.inbox, readonly=False)
        if not self._keywords_allowed:
            return False
        self._call(self.client.add_flags, [int(uid)], [keyword.encode()], silent=True)
        return True

    def folders(self) -> dict[str, str]:
        return {"inbox": self.inbox, "drafts": self.drafts}

    def close(self) -> None:
        _quietly_close(self.client)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _quietly_close(client: imapclient.IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        log.debug("logout failed; the connection is gone anyway", exc_info=True)
