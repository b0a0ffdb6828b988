from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest

from tests.dovecot import PASSWORD, Dovecot
from triage import config

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if shutil.which("dovecot") is None:
        pytest.skip("dovecot is not installed (bash .ci/run installs dovecot-imapd)")
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def user(dovecot: Dovecot) -> str:
    return dovecot.new_user()


@pytest.fixture
def make_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dovecot: Dovecot
) -> Callable[..., config.Config]:
    """A Config for one test user on the test Dovecot; keyword arguments override keys."""
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", PASSWORD)

    def build(
        user: str, *, drafting: dict[str, Any] | None = None, **account: Any
    ) -> config.Config:
        data: dict[str, Any] = {
            "state_dir": str(tmp_path / "state"),
            "identity": {"name": "Camille Martin", "address": "camille@example.com"},
            "drafting": {
                "signature": "Camille",
                "resources": [{"title": "Guide", "url": "https://example.com/g"}],
                "referrals": ["a colleague"],
                **(drafting or {}),
            },
            "accounts": [
                {
                    "name": "work",
                    "host": "127.0.0.1",
                    "port": dovecot.imap_port,
                    "security": "plain",
                    "username": user,
                    "password_env": "TRIAGE_TEST_PASSWORD",
                    **account,
                }
            ],
        }
        return config.parse(data, "<test config>")

    return build


def make_mail(
    subject: str,
    body: str,
    *,
    sender: str = "Jordan Blake <jordan@client.example>",
    to: str = "camille@example.com",
    date: datetime | None = None,
    headers: dict[str, str] | None = None,
    html: bool = False,
) -> bytes:
    """A test message written here (never copied from the corpus)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="client.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    if html:
        msg.set_content(body, subtype="html")
    else:
        msg.set_content(body)
    return msg.as_bytes()


EN_REFUSAL = (
    "Logo for my bakery",
    "Hi Camille,\n\nWe have no budget at all, but it would be great exposure for you. Could "
    "you design our logo for free?\n\nThanks,\nJordan\n",
)
FR_REFUSAL = (
    "Coaching pour mon fils",
    "Bonjour,\n\nJe voudrais réserver des séances pour mon fils, il ne sait pas que je vous "
    "écris.\n\nCordialement,\nHélène\n",
)
EN_ORDINARY = (
    "Illustrations for our annual report",
    "Dear Camille,\n\nWe would like six illustrations for our annual report; our budget is "
    "4,000 USD. Could you send your terms?\n\nKind regards,\nGrace\n",
)
