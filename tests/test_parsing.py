from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import make_mail
from triage.parsing import ParseError, parse
from triage.text import detect_language, fold, html_to_text, new_text


def test_parse_builds_the_inquiry_record() -> None:
    raw = (
        "From: =?utf-8?q?H=C3=A9l=C3=A8ne?= <Helene@Client.Example>\r\n"
        "Reply-To: other@client.example\r\nTo: a@example.com, b@example.com\r\n"
        "Cc: c@example.com\r\nSubject: =?utf-8?q?R=C3=A9f_:_devis?=\r\n"
        "Date: Sat, 14 Nov 2026 23:41:00 +0100\r\nMessage-ID: <m1@client.example>\r\n"
        "References: <a@x> <b@x>\r\nIn-Reply-To: <b@x>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Bonjour,\r\nje voudrais un devis pour mon site.\r\n\r\n"
        "Le ven. 13 nov. 2026, Camille a écrit :\r\n> Bien reçu\r\n"
    ).encode()
    inquiry = parse(raw)
    assert inquiry.sender_name == "Hélène"
    assert inquiry.sender_addr == "helene@client.example"
    assert inquiry.reply_address == "other@client.example"
    assert inquiry.to == ("a@example.com", "b@example.com") and inquiry.cc == ("c@example.com",)
    assert inquiry.subject == "Réf : devis"
    assert inquiry.date is not None and inquiry.date.utcoffset() == timedelta(hours=1)
    assert inquiry.date.hour == 23
    assert inquiry.message_id == "<m1@client.example>"
    assert inquiry.references == ("<a@x>", "<b@x>")
    assert inquiry.new_text == "Bonjour,\nje voudrais un devis pour mon site."
    assert "Bien reçu" in inquiry.text
    assert inquiry.lang == "fr"


def test_html_only_message_becomes_text() -> None:
    raw = make_mail(
        "Hello",
        "<html><body><p>Hello <b>Camille</b>,</p><p>Can we talk?</p>"
        "<style>p{}</style></body></html>",
        html=True,
    )
    inquiry = parse(raw)
    assert inquiry.text == "Hello Camille,\n\nCan we talk?"
    assert inquiry.lang == "en"


def test_list_and_auto_headers_are_kept_for_screening() -> None:
    inquiry = parse(
        make_mail(
            "x", "y", headers={"List-Unsubscribe": "<mailto:u@x>", "Auto-Submitted": "Auto-Replied"}
        )
    )
    assert inquiry.has_list_headers
    assert inquiry.headers["auto-submitted"] == "auto-replied"


def test_garbage_raises_parse_error_or_yields_a_record() -> None:
    for raw in (b"", b"\x00\xff\xfe", b"Subject: =?bogus?q?x?=\r\n\r\nbody"):
        try:
            inquiry = parse(raw)
        except ParseError:
            continue
        assert isinstance(inquiry.text, str)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi\n\nOn Mon, 3 Mar 2025 at 10:00, Claire <c@x> wrote:\n> old", "Hi"),
        ("Hi\nOn Mon, 3 Mar 2025 at 10:00, Claire\n<c@x> wrote:\n> old", "Hi"),
        ("Bonjour\n\n-- \nCamille\n06 00 00 00 00", "Bonjour"),
        ("Salut\n\nEnvoyé de mon iPhone", "Salut"),
        ("Yes\n-----Original Message-----\nFrom: x", "Yes"),
        ("> quoted first\nmy answer", "my answer"),
    ],
)
def test_new_text_drops_quotes_and_signatures(text: str, expected: str) -> None:
    assert new_text(text) == expected


def test_text_helpers() -> None:
    assert fold("Réf : GARANTIE à 100 % “test” l’été") == "ref : garantie a 100 % “test” l'ete"
    assert detect_language("Bonjour, je voudrais savoir si vous êtes disponible") == "fr"
    assert detect_language("Hello, I would like to know if you are available") == "en"
    assert detect_language("12345") == "en"
    assert html_to_text("<div>a</div><div>b &amp; c</div>") == "a\n\nb & c"
