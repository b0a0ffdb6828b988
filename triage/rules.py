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


#: Words, and each punctuation mark on its own: "100 %" and "100%" read the same.
TOKEN = re.compile(r"\w+|[^\w\s]")
#: Matching stops here: inquiries are short, and a 1 MB newsletter must not cost seconds.
MAX_CHARS = 20_000


@dataclass(frozen=True)
class Rule:
    label: str
    phrase: str
    weight: float
    #: The folded phrase as tokens; a token ending in "*" matches any word it starts.
    tokens: tuple[str, ...]

    def matches_at(self, words: Sequence[str], start: int) -> bool:
        if start + len(self.tokens) > len(words):
            return False
        for offset, token in enumerate(self.tokens):
            word = words[start + offset]
            if _prefix(token):
                if not word.startswith(token[:-1]):
                    return False
            elif word != token:
                return False
        return True


def _prefix(token: str) -> bool:
    """ "garanti*" matches any word it starts; a lone "*" is punctuation."""
    return token.endswith("*") and len(token) > 1


@dataclass(frozen=True)
class Match:
    """Raw weight per label and the phrases that produced it."""

    weights: dict[str, float]
    evidence: dict[str, list[str]]


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(fold(text[:MAX_CHARS]))


def tokenize_folded(folded: str) -> list[str]:
    return TOKEN.findall(folded[:MAX_CHARS])


def make_rule(label: str, phrase: str, weight: float) -> Rule:
    # "garanti*" keeps its star on the word it ends; elsewhere "*" is plain punctuation.
    tokens = tuple(re.findall(r"\w+\*|\w+|[^\w\s]", fold(phrase)))
    return Rule(label, phrase, weight, tokens)


class RuleSet:
    """Phrase rules indexed by their first words: a few look-ups per word of the message."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(r for r in rules if r.tokens)
        #: One-word rules by their word; longer ones by their first two words, when both are
        #: plain words: most phrases start with "I", "my", "je" or "de", so the pair is what
        #: tells them apart.
        self._by_word: dict[str, list[int]] = {}
        self._by_pair: dict[tuple[str, str], list[int]] = {}
        #: The rest, by first word, or by its first three letters when it is a prefix.
        self._by_first: dict[str, list[int]] = {}
        self._by_stem: dict[str, list[int]] = {}
        for index, rule in enumerate(self.rules):
            tokens = rule.tokens
            if _prefix(tokens[0]):
                self._by_stem.setdefault(tokens[0][:3], []).append(index)
            elif len(tokens) == 1:
                self._by_word.setdefault(tokens[0], []).append(index)
            elif not _prefix(tokens[1]):
                self._by_pair.setdefault((tokens[0], tokens[1]), []).append(index)
            else:
                self._by_first.setdefault(tokens[0], []).append(index)

    def match(self, text: str, *, folded: bool = False) -> Match:
        """Scores for `text` (already passed through `fold` when `folded`)."""
        words = tokenize_folded(text) if folded else tokenize(text)
        found: set[int] = set()
        rules, by_word, by_pair = self.rules, self._by_word, self._by_pair
        by_first, by_stem = self._by_first, self._by_stem
        last = len(words) - 1
        for i, word in enumerate(words):
            if word in by_word:
                found.update(by_word[word])
            pair = by_pair.get((word, words[i + 1])) if i < last else None
            for group in (pair, by_first.get(word), by_stem.get(word[:3])):
                for index in group or ():
                    if index not in found and rules[index].matches_at(words, i):
                        found.add(index)
        weights = dict.fromkeys(REFUSALS, 0.0)
        evidence: dict[str, list[str]] = {}
        for index in sorted(found):  # data order, so evidence reads like the rules file
            rule = rules[index]
            weights[rule.label] += rule.weight
            phrases = evidence.setdefault(rule.label, [])
            if rule.phrase not in phrases:  # the same cue can sit in both languages' files
                phrases.append(rule.phrase)
        return Match(weights, {label: evidence[label] for label in REFUSALS if label in evidence})


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
                rules.extend(make_rule(label, p, weight) for p in phrases if p.strip())
        sets[lang] = RuleSet(rules)
    return sets
