from __future__ import annotations

import pytest

from triage.classify import RuleClassifier, choose
from triage.labels import LABELS, NONE
from triage.parsing import from_fields


@pytest.fixture(scope="module")
def classifier() -> RuleClassifier:
    return RuleClassifier()


@pytest.mark.parametrize(
    ("subject", "body", "label"),
    [
        (
            "Website",
            "I need you to guarantee that we will double our sales, or refund me.",
            "guarantee",
        ),
        (
            "Site",
            "Pouvez-vous me garantir le résultat ? Sinon je veux être remboursé si ça rate.",
            "guarantee",
        ),
        ("Book", "Could you write my whole book? I'd like to be famous overnight.", "out_of_scope"),
        (
            "Livre",
            "Je voudrais devenir célèbre du jour au lendemain avec une stratégie magique.",
            "out_of_scope",
        ),
        (
            "CV",
            "You already helped me with my CV, it's the same problem as last time.",
            "already_helped",
        ),
        ("CV", "Vous m'avez déjà aidé pour mon CV, c'est le même problème.", "already_helped"),
        (
            "Coaching",
            "I'd like to book sessions for my son, he doesn't know I'm writing.",
            "third_party",
        ),
        ("Coaching", "Bonjour, c'est pour mon mari, il refuse de vous contacter.", "third_party"),
        (
            "!!!",
            "Answer me now or I'll leave a one-star review, you are incompetent.",
            "disrespect",
        ),
        ("Honte", "C'est INADMISSIBLE, répondez immédiatement !", "disrespect"),
        ("Call", "Can we do a quick call tonight at 11pm, and this Sunday too?", "private_time"),
        ("Appel", "On peut s'appeler ce dimanche ? Et pendant vos vacances aussi.", "private_time"),
        ("Logo", "We have no budget, could you do it for free?", "cannot_pay"),
        (
            "Logo",
            "Nous n'avons pas de budget, accepteriez-vous un échange de services ?",
            "cannot_pay",
        ),
        ("Quote", "Could you send your rates and availability for a logo in March?", NONE),
        ("Devis", "Pourriez-vous m'envoyer vos tarifs pour une couverture de roman ?", NONE),
    ],
)
def test_rules_find_the_situation_in_both_languages(
    classifier: RuleClassifier, subject: str, body: str, label: str
) -> None:
    (decision,) = classifier.decide([from_fields(subject=subject, body=body)])
    assert decision.label == label
    assert list(decision.scores) == list(LABELS)
    if label != NONE:
        assert decision.evidence[label]


def test_matching_ignores_accents_and_case(classifier: RuleClassifier) -> None:
    (a, b) = classifier.decide(
        [
            from_fields(subject="", body="ECHANGE DE SERVICES ?", lang="fr"),
            from_fields(subject="", body="échange de services ?", lang="fr"),
        ]
    )
    assert a.label == b.label == "cannot_pay"
    assert a.scores == b.scores


def test_quoted_history_is_not_evidence(classifier: RuleClassifier) -> None:
    body = "Thanks, see you Monday.\n\nOn Mon, 3 Mar 2025, Jo wrote:\n> could you do it for free?"
    (decision,) = classifier.decide([from_fields(subject="Re: hi", body=body)])
    assert decision.label == NONE


def test_user_phrases_extend_the_rules() -> None:
    inquiry = from_fields(subject="", body="Would you do it for a coffee?", lang="en")
    assert RuleClassifier().decide([inquiry])[0].label == NONE
    extended = RuleClassifier({"en": {"cannot_pay": ["for a coffee"]}})
    (decision,) = extended.decide([inquiry])
    assert decision.label == "cannot_pay"
    assert decision.evidence["cannot_pay"] == ["for a coffee"]


def test_weak_hints_alone_do_not_refuse(classifier: RuleClassifier) -> None:
    (decision,) = classifier.decide(
        [
            from_fields(
                subject="Portrait", body="My husband recommended you; we'd like a family portrait."
            )
        ]
    )
    assert decision.label == NONE
    assert 0 < decision.scores["third_party"] < 0.5


def test_choose_prefers_the_article_order_on_ties() -> None:
    scores = dict.fromkeys(LABELS, 0.0) | {"guarantee": 0.6, "cannot_pay": 0.6}
    assert choose(scores) == "guarantee"
    assert choose(dict.fromkeys(LABELS, 0.1)) == NONE
