"""Labelled inquiries in, a versioned model out: datasets, cross-validation, thresholds.

The fixed development split: within each (label, language), the 20 % of examples whose id
has the smallest SHA-256 are held out. The shipped model never trains on them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from triage import sources
from triage.classify import RuleClassifier, model_text
from triage.errors import InputError
from triage.evaluation import evaluate
from triage.labels import LABELS, NONE, REFUSALS
from triage.parsing import Inquiry
from triage.registry import shipped_dir

log = logging.getLogger(__name__)

DEV_SHARE = 0.2
#: Out-of-fold precision asked of each refusal label when its threshold is chosen, most
#: cautious first: the lowest target is kept whose decisions, out of fold, still meet
#: SAFETY. The issue's own figures, checked on out-of-fold data, never on the dev split.
TARGETS = tuple(round(0.99 - step / 200, 3) for step in range(15))  # 0.99, 0.985 ... 0.92
#: (lowest precision on the refusal labels, highest false-refusal rate), out of fold, each
#: to be met with a margin of MARGIN standard errors (see `safety`).
SAFETY = (0.93, 0.03)
MARGIN = 1.0
#: The least precision a label may have out of fold and still be drafted at all.
FLOOR = 0.85
MIN_EXAMPLES = 20
FOLDS = 5

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Example:
    id: str
    inquiry: Inquiry
    label: str
    source: str = "shipped"

    @property
    def lang(self) -> str:
        return self.inquiry.lang


def shipped() -> list[Example]:
    corpus = shipped_dir() / "corpus"
    examples: list[Example] = []
    for path in sorted(corpus.glob("*.jsonl")):
        examples.extend(_labelled(sources.read_jsonl(path), "shipped"))
    return examples


def _labelled(items: Iterable[sources.Item], source: str, label: str = "") -> list[Example]:
    examples = []
    for item in items:
        wanted = label or item.label
        if item.inquiry is None:
            log.warning("%s: skipped (%s)", item.id, item.error)
            continue
        if wanted not in LABELS:
            raise InputError(f"{item.id}: label {wanted!r} is not one of {', '.join(LABELS)}")
        examples.append(Example(item.id, item.inquiry, wanted, source))
    return examples


def split(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(train, dev): the fixed, stratified development split described above."""
    groups: dict[tuple[str, str], list[Example]] = {}
    for example in examples:
        groups.setdefault((example.label, example.lang), []).append(example)
    train, dev = [], []
    for group in groups.values():
        group.sort(key=lambda e: hashlib.sha256(e.id.encode()).hexdigest())
        cut = round(len(group) * DEV_SHARE)
        dev.extend(group[:cut])
        train.extend(group[cut:])
    return train, dev


def from_paths(paths: Sequence[str]) -> list[Example]:
    """JSONL files with a `label`, or directories: one named after a label (a Maildir or a
    folder of messages), or one whose sub-directories are named after labels."""
    examples: list[Example] = []
    for name in paths:
        path = Path(name)
        if path.is_file():
            examples.extend(_labelled(sources.read([name]), "user"))
        elif path.is_dir() and path.name in LABELS:
            examples.extend(_labelled(sources.read([name]), "user", path.name))
        elif path.is_dir():
            subdirs = [p for p in sorted(path.iterdir()) if p.is_dir() and p.name in LABELS]
            if not subdirs:
                raise InputError(
                    f"{path}: no sub-directory named after a label ({', '.join(LABELS)})"
                )
            for sub in subdirs:
                examples.extend(_labelled(sources.read([str(sub)]), "user", sub.name))
        else:
            raise InputError(f"{name}: no such file or directory")
    return examples


def merge(
    user: Sequence[Example], base: Sequence[Example], use_base: bool, say: Progress
) -> list[Example]:
    """The user's examples, plus the shipped ones (all, or only for labels the user has
    too few of, saying so)."""
    counts = Counter(e.label for e in user)
    merged = list(user)
    for label in LABELS:
        if user and counts[label] < MIN_EXAMPLES:
            say(
                f"{label}: only {counts[label]} example(s) of yours (fewer than {MIN_EXAMPLES}); "
                "keeping the shipped examples for it"
            )
        if use_base or counts[label] < MIN_EXAMPLES:
            merged.extend(e for e in base if e.label == label)
    return merged


def features(
    examples: Sequence[Example], rules: RuleClassifier
) -> tuple[list[str], list[list[float]]]:
    texts = [model_text(e.inquiry) for e in examples]
    weights = []
    for text in texts:
        match = rules.rules.match(text, folded=True)
        weights.append([match.weights[label] for label in REFUSALS])
    return texts, weights


def thresholds(
    probs: Sequence[Sequence[float]], labels: Sequence[str], truth: Sequence[str]
) -> tuple[dict[str, float], float]:
    """Per refusal label, the threshold below which the decision is `none` (abstain rather
    than refuse wrongly), and the precision target they were chosen for."""
    curves = precision_curves(probs, labels, truth)
    chosen, target = pick(curves, TARGETS[0]), TARGETS[0]
    for lower in TARGETS[1:]:
        trial = pick(curves, lower)
        precision, false_refusals = safety(truth, decide(probs, labels, trial), MARGIN)
        if precision < SAFETY[0] or false_refusals > SAFETY[1]:
            break
        chosen, target = trial, lower
    return chosen, target


def label_thresholds(
    probs: Sequence[Sequence[float]], labels: Sequence[str], truth: Sequence[str], target: float
) -> dict[str, float]:
    """Per refusal label, the lowest threshold at which out-of-fold precision reaches
    `target`."""
    return pick(precision_curves(probs, labels, truth), target)


def precision_curves(
    probs: Sequence[Sequence[float]], labels: Sequence[str], truth: Sequence[str]
) -> dict[str, list[tuple[float, float]]]:
    """Per refusal label, (threshold, precision) at each cut with at least 5 of the label's
    decisions at or above it, highest threshold first. Independent of any target."""
    picked: dict[str, list[tuple[float, bool]]] = {label: [] for label in REFUSALS}
    for row, truth_label in zip(probs, truth, strict=True):
        k = row.index(max(row))
        if labels[k] in picked:
            picked[labels[k]].append((row[k], truth_label == labels[k]))
    curves: dict[str, list[tuple[float, float]]] = {}
    for label, decided in picked.items():
        decided.sort(reverse=True)
        curve, right = [], 0
        for count, (p, ok) in enumerate(decided, 1):
            right += ok
            if count >= 5:
                curve.append((float(p), right / count))
        curves[label] = curve
    return curves


def pick(curves: dict[str, list[tuple[float, float]]], target: float) -> dict[str, float]:
    chosen: dict[str, float] = {}
    for label, cuts in curves.items():
        reaching = [p for p, precision in cuts if precision >= target]
        if not reaching and cuts:
            # A label the model finds hard: its most precise cut, if that is good enough, so
            # that it is drafted rarely rather than never.
            top = max(precision for _, precision in cuts)
            reaching = [p for p, precision in cuts if precision == top and top >= FLOOR]
        chosen[label] = round(max(min(reaching), 0.3), 4) if reaching else 1.01  # 1.01: never
    return chosen


def safety(
    truth: Sequence[str], predicted: Sequence[str], margin: float = 0.0
) -> tuple[float, float]:
    """(precision on the refusal labels, share of `none` that would get a draft), each moved
    `margin` standard errors towards the unsafe side. Out-of-fold figures are a sample: dev
    false refusals ran 0.3 to 0.5 points above the out-of-fold ones thresholds were met on."""
    refused = right = nones = drafted = 0
    for t, p in zip(truth, predicted, strict=True):
        if p != NONE:
            refused += 1
            right += t == p
        if t == NONE:
            nones += 1
            drafted += p != NONE
    precision = right / refused if refused else 1.0
    false_refusals = drafted / nones if nones else 0.0
    if refused:
        precision -= margin * math.sqrt(precision * (1 - precision) / refused)
    if nones:
        false_refusals += margin * math.sqrt(false_refusals * (1 - false_refusals) / nones)
    return precision, false_refusals


def decide(
    probs: Sequence[Sequence[float]], labels: Sequence[str], limits: dict[str, float]
) -> list[str]:
    out = []
    for row in probs:
        k = row.index(max(row))
        label = labels[k]
        out.append(label if label != NONE and row[k] >= limits.get(label, 0.5) else NONE)
    return out


def train(
    examples: Sequence[Example], say: Progress, *, folds: int = FOLDS, c: float = 1.0
) -> tuple[Any, dict[str, Any], list[str]]:
    """Cross-validate (for thresholds and the report), then fit on everything."""
    from triage import model

    if len(examples) < 2 * len(LABELS):
        raise InputError(f"only {len(examples)} labelled inquiries: too few to train on")
    rules = RuleClassifier()
    say(f"preparing {len(examples)} inquiries")
    texts, weights = features(examples, rules)
    data = model.rows(texts, weights)
    truth = [e.label for e in examples]
    probs, labels = model.cross_validate(data, truth, folds, c, say)
    limits, target = thresholds(probs, labels, truth)
    predicted = decide(probs, labels, limits)
    cv = evaluate(truth, predicted, [e.lang for e in examples])
    say(f"thresholds chosen for an out-of-fold precision of {target} per label")
    say(f"fitting the final model on {len(examples)} inquiries")
    pipeline = model.fit(data, truth, c)
    meta = {
        "thresholds": limits,
        "precision_target": target,
        "cross_validated": cv,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "examples": len(examples),
        "by_label": dict(Counter(truth)),
        "data_sha256": data_hash(examples),
        "C": c,
        "folds": folds,
    }
    return pipeline, meta, predicted


def predict(pipeline: Any, limits: dict[str, float], examples: Sequence[Example]) -> list[str]:
    """The decisions the product would make from the text alone (no mailbox context):
    what `eval` measures and what versions are compared on."""
    from triage.classify import HybridClassifier
    from triage.model import Model

    if not examples:
        return []
    loaded = Model(pipeline, {"thresholds": limits})
    hybrid = HybridClassifier(RuleClassifier(), lambda: loaded)
    return [d.label for d in hybrid.decide([e.inquiry for e in examples])]


def from_raw(raws: Sequence[bytes], label: str, source: str) -> list[Example]:
    """Messages read from a labelled IMAP folder."""
    items = [sources.from_bytes(f"{source}#{n}", raw) for n, raw in enumerate(raws, 1)]
    return _labelled(items, "user", label)


def data_hash(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for e in sorted(examples, key=lambda e: e.id):
        digest.update(f"{e.id}\0{e.label}\0{e.inquiry.subject}\0{e.inquiry.text}\n".encode())
    return digest.hexdigest()


def shuffled(examples: Sequence[Example], seed: int = 13) -> list[Example]:
    out = list(examples)
    random.Random(seed).shuffle(out)
    return out
