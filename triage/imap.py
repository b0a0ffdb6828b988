"""The IMAP store: the only module that imports imapclient."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import DRAFTS, SENT

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
SENT_NAMES = (
    "Sent",
    "Sent Items",
    "Sent Messages",
    "Envoyés",
    "Éléments envoyés",
    "[Gmail]/Sent Mail",
    "[Gmail]/Messages envoyés",
    "INBOX.Sent",
    "INBOX/Sent",
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
        #: The Sent folder, looked up on first use; None when there is none.
        self._sent: str | None = None
        self._sent_looked_up = False
        self._keywords_allowed = False
        self._idling = False
        self._idle_renew = 0.0
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
            _keepalive(client)
            if account.security == "starttls":
                client.starttls(context)
            if account.oauth2_token_command:
                _oauth2_login(client, account, where)
            else:
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
        self._uidvalidity = 0  # a new pass: the daemon keeps one connection for many
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

    def _find_sent_folder(self) -> str | None:
        listed = self._call(self.client.list_folders)
        for flags, _, name in listed:
            if SENT in flags:
                return str(name)
        lowered = {str(name).lower(): str(name) for _, _, name in listed}
        for candidate in SENT_NAMES:
            if candidate.lower() in lowered:
                return lowered[candidate.lower()]
        return None

    def _sent_folder(self) -> str | None:
        if not self._sent_looked_up:
            self._sent, self._sent_looked_up = self._find_sent_folder(), True
        return self._sent

    def sent_history(self, address: str, limit: int) -> list[bytes] | None:
        self._sent_folder()
        if not self._sent or not address:
            return None
        self._select(self._sent, readonly=True)
        uids = sorted(self._call(self.client.search, ["TO", address]))[-limit:]
        return self._bodies(uids)

    def folder_messages(self, folder: str) -> list[bytes]:
        """Every message of a folder (for training on labelled folders), read-only."""
        names = {str(name) for _, _, name in self._call(self.client.list_folders)}
        if folder not in names:
            raise MailboxError(f"account {self.name!r}: folder {folder!r} does not exist")
        self._select(folder, readonly=True)
        return self._bodies(sorted(self._call(self.client.search, ["ALL"])))

    def _bodies(self, uids: list[int]) -> list[bytes]:
        out: list[bytes] = []
        for start in range(0, len(uids), 100):
            chunk = uids[start : start + 100]
            data = self._call(self.client.fetch, chunk, ["BODY.PEEK[]"])
            out.extend(bytes(data[u][b"BODY[]"]) for u in chunk if b"BODY[]" in data.get(u, {}))
        return out

    def folders(self) -> dict[str, str]:
        return {"inbox": self.inbox, "drafts": self.drafts, "sent": self._sent_folder() or "(none)"}

    def close(self) -> None:
        # A connection that died silently must not hold up the exit for `timeout`.
        with contextlib.suppress(OSError):
            self.client.socket().settimeout(min(5.0, self.account.timeout))
        if self._idling:
            self._idling = False
            try:
                self.client.idle_done()
            except Exception:
                log.debug("ending IDLE failed; the connection is gone anyway", exc_info=True)
        _quietly_close(self.client)

    def abort(self) -> None:
        """Drop a connection thought dead without waiting for the server (no LOGOUT)."""
        self._idling = False
        try:
            self.client.shutdown()
        except Exception:
            log.debug("closing the socket failed", exc_info=True)

    def list_new_kept(self, cursor: Cursor | None, since: datetime) -> Listing:
        """`list_new` on a connection the daemon keeps between passes.

        While the inbox is still selected, a NOOP and a UID SEARCH tell whether anything is
        new, and only then is the inbox selected again (by `list_new`). Dovecot spends time in
        proportion to the mailbox's size on every re-SELECT in a session that has listed
        folders (it refreshes its list index): a poll that finds nothing must not. A
        UIDVALIDITY change ends the session at the NOOP, which raises MailboxError.
        """
        if (
            self._selected != (self.inbox, True)
            or cursor is None
            or cursor.uidvalidity != self._uidvalidity
            or cursor.last_uid == 0
        ):
            return self.list_new(cursor, since)
        self._call(self.client.noop)
        found = self._call(self.client.search, ["UID", f"{cursor.last_uid + 1}:*"])
        if any(uid > cursor.last_uid for uid in found):
            return self.list_new(cursor, since)
        return Listing(self._uidvalidity, False, [])

    @property
    def can_idle(self) -> bool:
        return bool(self._call(self.client.has_capability, "IDLE"))

    def idle_wait(self, timeout: float) -> bool:
        """Up to `timeout` seconds in IDLE on the inbox; True as soon as new mail arrives.

        Use a connection that does nothing else. imapclient's IDLE can hang or spin on a
        dropped connection (imapclient issues 449 and 565), so: every wait is bounded, the
        socket has a read timeout and TCP keepalive, IDLE is renewed every `idle_refresh`
        seconds (a DONE that gets no answer raises), and BYE or end-of-file raise
        MailboxError. The renewal time is on the wall clock, so it falls due at once when the
        computer wakes from sleep.
        """
        if self._idling and time.time() >= self._idle_renew:
            self._idling = False
            _, responses = self._call(self.client.idle_done)
            if self._new_mail(responses):
                return True
        if not self._idling:
            self._select(self.inbox, readonly=True)
            self._call(self.client.idle)
            self._idling = True
            self._idle_renew = time.time() + self.account.idle_refresh
        wait = max(0.0, min(timeout, self._idle_renew - time.time()))
        started = time.monotonic()
        responses = self._call(self.client.idle_check, timeout=wait)
        if responses:
            return self._new_mail(responses)
        if time.monotonic() - started < wait * 0.9:
            # The socket was readable but gave no line: end of file or an error. Ending
            # IDLE either works (the server is there) or raises.
            self._idling = False
            _, responses = self._call(self.client.idle_done)
            return self._new_mail(responses)
        return False

    def _new_mail(self, responses: Sequence[Any]) -> bool:
        new = False
        for response in responses:
            if len(response) >= 2 and response[0] == b"BYE":
                self._idling = False
                said = " ".join(_text(word) for word in response[1:])
                raise MailboxError(
                    f"account {self.name!r}: the server closed the connection: {said}"
                )
            new = new or (len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT"))
        return new


def _oauth2_login(client: imapclient.IMAPClient, account: Account, where: str) -> None:
    """XOAUTH2 with the last token; when it is refused, once more with a fresh one."""
    try:
        client.oauth2_login(account.username, credentials.oauth2_token(account))
        return
    except LoginError:
        log.info("%s: access token refused; running oauth2_token_command again", where)
    try:
        client.oauth2_login(account.username, credentials.oauth2_token(account, fresh=True))
    except LoginError:
        raise AuthError(
            f"{where}: the server refused the OAuth2 access token from oauth2_token_command "
            "(even a fresh one): check the account and the token's scope"
        ) from None


def _keepalive(client: imapclient.IMAPClient) -> None:
    """TCP keepalive, so a peer that vanished (sleep, new network) shows up as an error."""
    sock = client.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle_option = getattr(socket, "TCP_KEEPIDLE", getattr(socket, "TCP_KEEPALIVE", None))
    for option, value in ((idle_option, 60), (getattr(socket, "TCP_KEEPINTVL", None), 15)):
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
    if hasattr(socket, "TCP_KEEPCNT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _quietly_close(client: imapclient.IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        log.debug("logout failed; the connection is gone anyway", exc_info=True)
