"""One decision per inquiry: the primary label or `none`, every score, and the evidence.

The pipeline only knows the `Classifier` protocol, so the trained model can join the rules
without touching anything upstream or downstream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from triage import rules
from triage.context import Context, WorkingTime, similarity
from triage.errors import ModelError
from triage.labels import LABELS, NONE, REFUSALS
from triage.parsing import Inquiry
from triage.text import fold

if TYPE_CHECKING:
    from triage.model import Model

log = logging.getLogger(__name__)

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
    @property
    def wants_history(self) -> bool:
        """True when `decide` uses the mailbox history (so the pass looks it up)."""
        ...

    def decide(
        self, inquiries: Sequence[Inquiry], contexts: Sequence[Context] | None = None
    ) -> list[Decision]:
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
    wants_history = False

    def __init__(self, extra: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> None:
        # Both languages' phrases apply to every message: mail mixes languages, and a short
        # message's language is a guess. The phrases are specific enough not to collide.
        sets = rules.load(extra)
        self.rules = rules.RuleSet([rule for s in sets.values() for rule in s.rules])

    def decide(
        self, inquiries: Sequence[Inquiry], contexts: Sequence[Context] | None = None
    ) -> list[Decision]:
        return [self._one(inquiry) for inquiry in inquiries]

    def _one(self, inquiry: Inquiry) -> Decision:
        match = self.rules.match(matched_text(inquiry))
        scores = {label: saturate(match.weights[label]) for label in REFUSALS}
        scores[NONE] = round(1.0 - max(scores.values()), 4)
        label = choose(scores)
        ordered = {label_: scores[label_] for label_ in LABELS}
        return Decision(label, ordered, match.evidence, inquiry.lang)


def model_text(inquiry: Inquiry) -> str:
    """What the model reads: the same text as the rules, folded."""
    return fold(matched_text(inquiry)[: rules.MAX_CHARS])


class HybridClassifier:
    """Rules and the trained model together, adjusted by context; one decision per inquiry.

    The model is loaded on the first batch that has something to classify. When it cannot be
    loaded, the rules decide alone, after one warning.
    """

    def __init__(
        self,
        rules_: RuleClassifier,
        loader: Callable[[], Model],
        working: WorkingTime | None = None,
    ) -> None:
        self.rules = rules_
        self.loader = loader
        self.working = working
        self._model: Model | None = None
        self._failed = False

    @property
    def wants_history(self) -> bool:
        """Only the model uses the history: no Sent look-ups once it has failed to load."""
        return not self._failed

    @property
    def model(self) -> Model | None:
        if self._model is None and not self._failed:
            try:
                self._model = self.loader()
            except ModelError as exc:
                self._failed = True
                log.warning("%s; deciding with the phrase rules alone", exc)
        return self._model

    def decide(
        self, inquiries: Sequence[Inquiry], contexts: Sequence[Context] | None = None
    ) -> list[Decision]:
        if not inquiries:
            return []
        model = self.model
        if model is None:
            return self.rules.decide(inquiries)
        from triage.model import rows

        texts = [model_text(i) for i in inquiries]
        matches = [self.rules.rules.match(text, folded=True) for text in texts]
        weights = [[m.weights[label] for label in REFUSALS] for m in matches]
        probabilities = model.probabilities(rows(texts, weights))
        labels, limits = model.labels, model.thresholds
        contexts = contexts or [Context()] * len(inquiries)
        decisions: list[Decision] = []
        explain: list[tuple[int, str]] = []  # (decision, label) whose model terms are wanted
        for inquiry, match, probs, context in zip(
            inquiries, matches, probabilities, contexts, strict=True
        ):
            scores = {label: float(probs[labels.index(label)]) for label in LABELS}
            evidence = {k: list(v) for k, v in match.evidence.items()}
            self._adjust(inquiry, context, scores, evidence)
            best = max(LABELS, key=lambda label: scores[label])
            label = best if best != NONE and scores[best] >= limits.get(best, 0.5) else NONE
            top = best if best != NONE else max(REFUSALS, key=lambda k: scores[k])
            if label != NONE or scores[top] >= 0.2:
                explain.append((len(decisions), top))
            rounded = {k: round(v, 4) for k, v in scores.items()}
            decisions.append(Decision(label, rounded, evidence, inquiry.lang))
        found = model.top_terms([texts[i] for i, _ in explain], [top for _, top in explain])
        for (i, top), terms in zip(explain, found, strict=True):
            if terms:
                decisions[i].evidence.setdefault(top, []).append("model: " + ", ".join(terms))
        return decisions

    def _adjust(
        self,
        inquiry: Inquiry,
        context: Context,
        scores: dict[str, float],
        evidence: dict[str, list[str]],
    ) -> None:
        """Context moves a score the text already supports; it never creates one alone."""
        if self.working is not None:
            why = self.working.outside(inquiry.date)
            if why and scores["private_time"] >= 0.15:
                scores["private_time"] = min(1.0, scores["private_time"] + 0.2)
                evidence.setdefault("private_time", []).append(why)
        if context.history is None:
            return
        if not context.history:
            scores["already_helped"] *= 0.5
            if scores["already_helped"] >= 0.1:
                evidence.setdefault("already_helped", []).append("no earlier reply to this sender")
            return
        closeness = similarity(inquiry.new_text or inquiry.text, context.history)
        if closeness >= 0.3 and scores["already_helped"] >= 0.1:
            scores["already_helped"] = min(1.0, scores["already_helped"] + closeness)
            evidence.setdefault("already_helped", []).append(
                f"earlier thread with this sender on a close subject (similarity {closeness})"
            )
        elif closeness < 0.1:
            scores["already_helped"] *= 0.5
            if scores["already_helped"] >= 0.1:
                evidence.setdefault("already_helped", []).append(
                    f"earlier exchange with this sender was about something else ({closeness})"
                )
