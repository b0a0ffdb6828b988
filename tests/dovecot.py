"""A real Dovecot for the tests: one per test session, in a temp dir, on free loopback ports.

Any user name logs in with the password `secret` (static passdb), so each test takes a fresh
user and so a fresh, empty mailbox: tests never see each other's mail.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import imapclient

PASSWORD = "secret"

CONFIG = """
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 1000
first_valid_uid = 1
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dovecot:
    def __init__(self) -> None:
        # mkdtemp under /tmp: every parent is enterable by `nobody` (pytest's tmp_path is not).
        self.dir = Path(tempfile.mkdtemp(prefix="triage-dovecot-"))
        os.chmod(self.dir, 0o755)
        (self.dir / "home").mkdir(mode=0o777)
        os.chmod(self.dir / "home", 0o777)
        self.ca_file = str(self.dir / "cert.pem")
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(self.dir / "key.pem"),
                "-out",
                self.ca_file,
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        self.config = self.dir / "dovecot.conf"
        self.process: subprocess.Popen[bytes] | None = None
        self._users = itertools.count(1)
        self.host = "127.0.0.1"
        self.imap_port = self.imaps_port = 0

    def start(self, *, same_ports: bool = False) -> None:
        """`same_ports`: come back where clients expect the server (a restart)."""
        for _ in range(5):
            if not (same_ports and self.imap_port):
                self.imap_port, self.imaps_port = free_port(), free_port()
            self.config.write_text(
                CONFIG.format(
                    dir=self.dir,
                    password=PASSWORD,
                    imap_port=self.imap_port,
                    imaps_port=self.imaps_port,
                )
            )
            self.process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.config)],
                start_new_session=True,
                stderr=subprocess.PIPE,
            )
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"dovecot did not start; see {self.dir}/dovecot.log")

    def _wait_ready(self, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                client = imapclient.IMAPClient(self.host, self.imap_port, ssl=False, timeout=2)
                client.login("probe", PASSWORD)
                client.logout()
                return True
            except (OSError, imapclient.exceptions.IMAPClientError):
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # The master's children share its session: make sure none is left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same ports with the same mail, as a server upgrade."""
        self.stop()
        self.start(same_ports=True)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def new_user(self) -> str:
        return f"user{next(self._users)}-{os.getpid()}"

    def client(self, user: str) -> imapclient.IMAPClient:
        client = imapclient.IMAPClient(self.host, self.imap_port, ssl=False, timeout=10)
        client.login(user, PASSWORD)
        return client

    def deliver(
        self, user: str, raw: bytes, flags: tuple[bytes, ...] = (), folder: str = "INBOX"
    ) -> None:
        client = self.client(user)
        try:
            client.append(folder, raw, flags=flags)
        finally:
            client.logout()

    def deliver_many(self, user: str, raws: list[bytes]) -> None:
        client = self.client(user)
        try:
            for raw in raws:
                client.append("INBOX", raw)
        finally:
            client.logout()

    def doveadm(self, *args: str) -> str:
        done = subprocess.run(
            ["doveadm", "-c", str(self.config), *args], check=True, capture_output=True, text=True
        )
        return done.stdout
