"""IDLE on the test Dovecot, and the guards against a connection that dies under it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import EN_REFUSAL, make_mail
from tests.daemon_helpers import wait_until
from tests.dovecot import Dovecot
from triage import config
from triage.errors import MailboxError
from triage.imap import ImapMailbox

MakeConfig = Callable[..., config.Config]


class Proxy:
    """A TCP relay to Dovecot that can go silent without closing anything, as a connection
    does when the network drops it (laptop sleep, new Wi-Fi, a NAT timeout)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.silent = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(("127.0.0.1", self.target))
                self.sockets += [client, server]
                for src, dst in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if not self.silent.is_set():
                    dst.sendall(data)

    def close(self) -> None:
        for sock in [self.listener, *self.sockets]:
            sock.close()


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[Proxy]:
    relay = Proxy(dovecot.imap_port)
    yield relay
    relay.close()


def in_thread(fn: Callable[[], Any], timeout: float) -> Any:
    """Run `fn` in a thread: a call that hangs fails the test instead of hanging it."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still blocked after {timeout} s: the IDLE hang"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def test_idle_wait_hears_new_mail(dovecot: Dovecot, user: str, make_config: MakeConfig) -> None:
    mailbox = ImapMailbox(make_config(user).accounts[0])
    try:
        assert mailbox.can_idle
        assert mailbox.idle_wait(0.1) is False  # IDLE is on; nothing came
        dovecot.deliver(user, make_mail(*EN_REFUSAL))
        wait_until(lambda: mailbox.idle_wait(1.0), timeout=15, what="EXISTS in IDLE")
    finally:
        mailbox.close()


def test_idle_is_renewed_and_still_hears_mail(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    mailbox = ImapMailbox(make_config(user, idle_refresh=1.0).accounts[0])
    try:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:  # two renewals (DONE, IDLE) on a live server
            assert mailbox.idle_wait(0.5) is False
        dovecot.deliver(user, make_mail(*EN_REFUSAL))
        wait_until(lambda: mailbox.idle_wait(1.0), timeout=15, what="EXISTS after renewals")
    finally:
        mailbox.close()


def test_server_closing_the_connection_raises(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    mailbox = ImapMailbox(make_config(user).accounts[0])
    try:
        mailbox.idle_wait(0.1)
        dovecot.doveadm("kick", user)
        with pytest.raises(MailboxError, match="account 'work'"):
            in_thread(lambda: wait_until(lambda: mailbox.idle_wait(0.5), timeout=15), 30)
    finally:
        mailbox.abort()


def test_a_connection_gone_silent_is_noticed_not_waited_on_forever(
    proxy: Proxy, user: str, make_config: MakeConfig
) -> None:
    account = make_config(user, port=proxy.port, idle_refresh=1.0, timeout=1.0).accounts[0]
    mailbox = ImapMailbox(account)
    try:
        assert mailbox.idle_wait(0.1) is False
        proxy.silent.set()  # packets vanish; no FIN, no RST
        with pytest.raises(MailboxError):
            in_thread(lambda: wait_until(lambda: mailbox.idle_wait(0.5), timeout=20), 40)
    finally:
        mailbox.abort()


def test_abort_drops_a_silent_connection_without_waiting(
    proxy: Proxy, user: str, make_config: MakeConfig
) -> None:
    mailbox = ImapMailbox(make_config(user, port=proxy.port).accounts[0])
    proxy.silent.set()
    in_thread(mailbox.abort, 5)  # close() would wait `timeout` (60 s) for LOGOUT
