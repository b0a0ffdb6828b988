"""Phrase rules kept as data (rules_data/*.toml): scores per label with the phrases as evidence."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from triage.labels import LANGUAGES, REFUSALS
from triage.text import fold

STRONG = 1.0
WEAK = 0.4


@dataclass(frozen=True)
class Rule:
    label: str
    phrase: str
    weight: float
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Match:
    """Raw weight per label and the phrases that produced it."""

    weights: dict[str, float]
    evidence: dict[str, list[str]]


def compile_phrase(phrase: str) -> re.Pattern[str]:
    words = fold(phrase).split()
    parts = []
    for word in words:
        star = word.endswith("*")
        body = re.escape(word.rstrip("*"))
        parts.append(body + (r"\w*" if star else ""))
    # Word boundaries only where the phrase itself starts or ends with a word character.
    start = r"(?<!\w)" if re.match(r"\w", words[0]) else ""
    end = r"(?!\w)" if re.search(r"\w$", words[-1]) else ""
    return re.compile(start + r"\s+".join(parts) + end)


class RuleSet:
    """All phrase rules of one language, compiled once."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)

    def match(self, text: str) -> Match:
        folded = fold(text)
        weights = dict.fromkeys(REFUSALS, 0.0)
        evidence: dict[str, list[str]] = {label: [] for label in REFUSALS}
        for rule in self.rules:
            if rule.pattern.search(folded):
                weights[rule.label] += rule.weight
                evidence[rule.label].append(rule.phrase)
        return Match(weights, {k: v for k, v in evidence.items() if v})


def load(extra: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> dict[str, RuleSet]:
    """The bundled rules per language, plus the user's phrases from the config (as strong)."""
    sets: dict[str, RuleSet] = {}
    for lang in LANGUAGES:
        data = tomllib.loads(
            resources.files("triage.rules_data").joinpath(f"{lang}.toml").read_text("utf-8")
        )
        rules: list[Rule] = []
        for label in REFUSALS:
            section = data.get(label, {})
            user = list((extra or {}).get(lang, {}).get(label, []))
            for weight, phrases in (
                (STRONG, [*section.get("strong", []), *user]),
                (WEAK, section.get("weak", [])),
            ):
                rules.extend(
                    Rule(label, p, weight, compile_phrase(p)) for p in phrases if p.strip()
                )
        sets[lang] = RuleSet(rules)
    return sets
