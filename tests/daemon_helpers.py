"""`triage daemon` as a real process against the test Dovecot, and ways to wait for it."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.dovecot import PASSWORD, Dovecot

ROOT = Path(__file__).resolve().parent.parent


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(value)


def write_config(
    path: Path,
    dovecot: Dovecot,
    users: dict[str, str],
    *,
    daemon: dict[str, Any] | None = None,
    **account: Any,
) -> Path:
    """A config file with one account per (name, user) on the test Dovecot."""
    lines = [
        f"state_dir = {toml_value(str(path.parent / 'state'))}",
        "[identity]",
        'name = "Camille Martin"',
        'address = "camille@example.com"',
        "[drafting]",
        'signature = "Camille"',
        "[daemon]",
        *(
            f"{k} = {toml_value(v)}"
            for k, v in {"backoff_max": 1.0, "auth_retry": 3600.0, **(daemon or {})}.items()
        ),
    ]
    for name, user in users.items():
        settings = {
            "name": name,
            "host": "127.0.0.1",
            "port": dovecot.imap_port,
            "security": "plain",
            "username": user,
            "password_env": "TRIAGE_TEST_PASSWORD",
            "timeout": 5.0,
            "poll_every": 3600.0,
            **account,
        }
        lines += ["[[accounts]]", *(f"{k} = {toml_value(v)}" for k, v in settings.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class DaemonProcess:
    """`python -m triage daemon` with its standard error in a file the test reads."""

    def __init__(
        self, config: Path, log: Path, *args: str, password: str = PASSWORD, debug: bool = False
    ) -> None:
        self.log = log
        env = {**os.environ, "TRIAGE_TEST_PASSWORD": password, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "triage", "daemon", "--config", str(config), *args]
        if debug:
            command.append("--debug")
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=handle, env=env, cwd=ROOT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern: str, timeout: float = 30.0, count: int = 1) -> None:
        """Until `pattern` (a regex) is in the log `count` times; fail if the daemon exits."""

        def found() -> bool:
            if len(re.findall(pattern, self.text())) >= count:
                return True
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the daemon exited ({self.process.returncode}):\n{self.text()}"
                )
            return False

        try:
            wait_until(found, timeout, pattern)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- daemon log ---\n{self.text()}") from None

    def send(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.send(signum)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def state_rows(config_dir: Path, query: str) -> list[tuple[Any, ...]]:
    path = config_dir / "state" / "state.sqlite3"
    if not path.exists():
        return []
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return list(db.execute(query))
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def drafts_in_reply_to(dovecot: Dovecot, user: str) -> list[str]:
    """The In-Reply-To of every draft in the user's Drafts: one per inquiry answered."""
    return header_values(dovecot, user, "Drafts", "IN-REPLY-TO")


def inbox_message_ids(dovecot: Dovecot, user: str) -> list[str]:
    return header_values(dovecot, user, "INBOX", "MESSAGE-ID")


def header_values(dovecot: Dovecot, user: str, folder: str, name: str) -> list[str]:
    """One header of every message in `folder`, sorted, read without setting \\Seen."""
    client = dovecot.client(user)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        if not uids:
            return []
        data = client.fetch(uids, [f"BODY.PEEK[HEADER.FIELDS ({name})]"])
        key = f"BODY[HEADER.FIELDS ({name})]".encode()
        headers = [v[key].decode() for v in data.values()]
        return sorted(h.split(":", 1)[1].strip() for h in headers if ":" in h)
    finally:
        client.logout()


def draft_count(dovecot: Dovecot, user: str) -> int:
    client = dovecot.client(user)
    try:
        return int(client.folder_status("Drafts", [b"MESSAGES"])[b"MESSAGES"])
    finally:
        client.logout()
