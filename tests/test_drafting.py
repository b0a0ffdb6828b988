from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import make_mail
from triage.classify import Decision
from triage.config import Drafting, Identity, Resource
from triage.drafting import Drafter, draft_message_id, reply_subject
from triage.errors import TemplateError
from triage.labels import LABELS, REFUSALS
from triage.parsing import parse

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
IDENTITY = Identity(name="Camille Martin", address="camille@example.com")


def drafter(**kwargs: object) -> Drafter:
    settings = {
        "signature": "Camille",
        "resources": [Resource("Free guide", "https://g.example")],
        "referrals": ["a colleague"],
        **kwargs,
    }
    return Drafter(IDENTITY, Drafting(**settings))  # type: ignore[arg-type]


def decision(label: str, lang: str) -> Decision:
    return Decision(label, dict.fromkeys(LABELS, 0.0) | {label: 0.9}, {label: ["x"]}, lang)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Logo", "Re: Logo"),
        ("Re: Logo", "Re: Logo"),
        ("RE: re: Logo", "Re: Logo"),
        ("Réf : Devis", "Re: Devis"),
        ("AW: Angebot", "Re: Angebot"),
        ("Fwd: Logo", "Re: Fwd: Logo"),
        ("Re[2]: Logo", "Re: Logo"),
        ("", "Re:"),
    ],
)
def test_reply_subject_never_doubles(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_message_id_is_stable_and_on_the_identity_domain() -> None:
    a = draft_message_id("work", "<m1@x>", "example.com")
    assert a == draft_message_id("work", "<m1@x>", "example.com")
    assert a != draft_message_id("home", "<m1@x>", "example.com")
    assert a.startswith("<") and a.endswith("@example.com>")


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("label", REFUSALS)
def test_every_template_renders_a_draft_that_does_not_reveal_the_label(
    label: str, lang: str
) -> None:
    inquiry = parse(
        make_mail(
            "Projet",
            "Bonjour" if lang == "fr" else "Hello",
            sender="Jo Blake <jo@client.example>",
            headers={"Reply-To": "jo.other@client.example"},
        )
    )
    draft = drafter().build(
        decision(label, lang), inquiry, account="work", inquiry_id=inquiry.message_id, now=NOW
    )
    message = email.message_from_bytes(draft.raw, policy=email.policy.default)
    assert message["To"] == "jo.other@client.example"
    assert message["In-Reply-To"] == inquiry.message_id
    assert message.get_content_charset() == "utf-8"
    body = draft.body
    for secret in [*LABELS, "triage"]:
        assert secret not in body and secret not in str(message["Message-ID"])
    assert not any(h.lower().startswith("x-") for h in message.keys())  # noqa: SIM118
    assert "Camille" in body and "Free guide: https://g.example" in body.replace(" :", ":")
    assert "a colleague" in body
    greeting = "Bonjour Jo Blake," if lang == "fr" else "Hello Jo,"
    assert body.startswith(greeting)


def test_reason_only_when_the_user_chooses_to_explain() -> None:
    inquiry = parse(make_mail("Logo", "Hello, can you do it for free?"))
    with_reason = drafter().render_body(decision("cannot_pay", "en"), inquiry)[1]
    without = drafter(explain_reason=False).render_body(decision("cannot_pay", "en"), inquiry)[1]
    assert "paid engagements" in with_reason
    assert "paid engagements" not in without
    assert "not able to take this on" in without


def test_user_templates_come_first_and_errors_are_clear(tmp_path: Path) -> None:
    (tmp_path / "cannot_pay.en.j2").write_text(
        '{% extends "base.en.j2" %}{% block reason %}My own words.{% endblock %}'
    )
    inquiry = parse(make_mail("Logo", "Hello"))
    body = drafter(templates_dir=str(tmp_path)).render_body(decision("cannot_pay", "en"), inquiry)[
        1
    ]
    assert "My own words." in body and "Thank you for your message" in body
    (tmp_path / "guarantee.en.j2").write_text("{{ no_such_variable }}")
    with pytest.raises(TemplateError, match=r"guarantee\.en\.j2.*no_such_variable"):
        drafter(templates_dir=str(tmp_path)).render_body(decision("guarantee", "en"), inquiry)
    (tmp_path / "disrespect.en.j2").write_text("{% if %}")
    with pytest.raises(TemplateError, match=r"disrespect\.en\.j2 line 1"):
        drafter(templates_dir=str(tmp_path)).render_body(decision("disrespect", "en"), inquiry)


def test_original_is_quoted_with_a_localised_attribution() -> None:
    raw = make_mail(
        "Devis",
        "Bonjour,\n\nPas de budget.\n",
        sender="=?utf-8?q?H=C3=A9l=C3=A8ne?= <h@client.example>",
        date=datetime(2026, 11, 14, 22, 41, tzinfo=UTC),
    )
    body = drafter().render_body(decision("cannot_pay", "fr"), parse(raw))[1]
    assert "Le sam. 14 nov. 2026 à 22:41, Hélène a écrit :\n> Bonjour,\n>\n> Pas de budget." in body
    body_en = drafter().render_body(decision("cannot_pay", "en"), parse(raw))[1]
    assert "On Sat, 14 Nov 2026 at 22:41, Hélène wrote:\n> Bonjour," in body_en
