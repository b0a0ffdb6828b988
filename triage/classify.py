"""One decision per inquiry: the primary label or `none`, every score, and the evidence.

The pipeline only knows the `Classifier` protocol, so the trained model can join the rules
without touching anything upstream or downstream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from triage import rules
from triage.labels import LABELS, NONE, REFUSALS
from triage.parsing import Inquiry

#: A label is chosen when its score reaches this (one strong phrase, or three weak ones).
THRESHOLD = 0.5


@dataclass(frozen=True)
class Decision:
    label: str
    scores: dict[str, float]
    evidence: dict[str, list[str]] = field(default_factory=dict)
    lang: str = "en"

    @property
    def refuses(self) -> bool:
        return self.label != NONE


class Classifier(Protocol):
    def decide(self, inquiries: Sequence[Inquiry]) -> list[Decision]:
        """Decisions for a batch (batches are much cheaper for a trained model)."""
        ...


def saturate(weight: float) -> float:
    """Raw rule weight -> a score in [0, 1): 1 strong phrase is 0.5, 3 are 0.75."""
    return round(weight / (weight + 1.0), 4)


def choose(scores: Mapping[str, float], threshold: float = THRESHOLD) -> str:
    """The best refusal label when it reaches the threshold; ties go to the article's order."""
    best = max(REFUSALS, key=lambda label: scores.get(label, 0.0))
    return best if scores.get(best, 0.0) >= threshold else NONE


def matched_text(inquiry: Inquiry) -> str:
    """What the sender wrote now: quoted history belongs to someone else."""
    return inquiry.subject + "\n" + (inquiry.new_text or inquiry.text)


class RuleClassifier:
    def __init__(self, extra: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> None:
        # Both languages' phrases apply to every message: mail mixes languages, and a short
        # message's language is a guess. The phrases are specific enough not to collide.
        sets = rules.load(extra)
        self.rules = rules.RuleSet([rule for s in sets.values() for rule in s.rules])

    def decide(self, inquiries: Sequence[Inquiry]) -> list[Decision]:
        return [self._one(inquiry) for inquiry in inquiries]

    def _one(self, inquiry: Inquiry) -> Decision:
        match = self.rules.match(matched_text(inquiry))
        scores = {label: saturate(match.weights[label]) for label in REFUSALS}
        scores[NONE] = round(1.0 - max(scores.values()), 4)
        label = choose(scores)
        ordered = {label_: scores[label_] for label_ in LABELS}
        return Decision(label, ordered, match.evidence, inquiry.lang)
