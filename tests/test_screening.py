from __future__ import annotations

import pytest

from tests.conftest import make_mail
from triage.parsing import parse
from triage.screening import screen


@pytest.mark.parametrize(
    ("sender", "headers", "flags", "reason"),
    [
        (
            "a@client.example",
            {"Auto-Submitted": "auto-replied"},
            (),
            "auto-submitted (auto-replied)",
        ),
        ("a@client.example", {"Auto-Submitted": "no"}, (), None),
        ("a@client.example", {"List-Id": "<x.y>"}, (), "mailing list (List-* header)"),
        ("a@client.example", {"Precedence": "junk"}, (), "precedence junk"),
        ("a@client.example", {"Return-Path": "<>"}, (), "bounce (empty Return-Path)"),
        ("no-reply@client.example", {}, (), "automated sender"),
        ("MAILER-DAEMON@client.example", {}, (), "automated sender"),
        ("postmaster@client.example", {}, (), "automated sender"),
        ("me@example.com", {}, (), "sent by you"),
        ("alias@example.com", {}, (), "sent by you"),
        ("a@client.example", {}, ("\\Answered",), "already answered"),
        ("a@client.example", {}, ("\\Draft",), "a draft"),
        ("vip@client.example", {}, (), "on the allow list"),
        ("b@friends.example", {}, (), "on the allow list"),
        ("a@client.example", {}, ("\\Seen",), None),
    ],
)
def test_screen(
    sender: str, headers: dict[str, str], flags: tuple[str, ...], reason: str | None
) -> None:
    inquiry = parse(make_mail("Hello", "Could you do it for free?", sender=sender, headers=headers))
    got = screen(
        inquiry,
        own_addresses={"me@example.com", "alias@example.com"},
        allow=["vip@client.example", "@friends.example"],
        flags=flags,
    )
    assert got == reason
