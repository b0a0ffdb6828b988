"""Signals the text of an inquiry does not carry: the mailbox history and the clock.

Both only adjust what the text already suggests: neither can refuse an inquiry on its own.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from triage.errors import ConfigError
from triage.text import fold

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Words too common to say anything about what a thread is about.
STOPWORDS = frozenset(
    "the and you your to of is for my i it that this with have be are on not can would we me "
    "will but at if from please thanks could just about like a an in or so as do was hi hello "
    "le la les et vous votre vos de des du un une pour je est pas que qui mon ma mes sur avec "
    "nous merci bonjour cordialement ce cette il elle suis au aux en ne se sa son ou "
    "i'm it's don't can't i'll we're you're there here they them our us all any some one "
    "want need would should has had been was were what when which who how why also very "
    "lui leur ils elles nos notre ai as avez avons a y ça ca est-ce qu'il c'est j'ai plus "
    "tres très bien faire fait peut peux veut veux".split()
)


@dataclass(frozen=True)
class Context:
    """What the mailbox knows about one inquiry; None where it could not be looked up."""

    #: Texts of earlier replies from the user to this sender (from Sent), newest first.
    history: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WorkingTime:
    zone: ZoneInfo | None
    start: time
    end: time
    days: frozenset[int]

    @classmethod
    def parse(cls, zone: str, hours: str, days: Sequence[str], where: str) -> WorkingTime:
        try:
            tz = ZoneInfo(zone) if zone else None
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{where}: unknown timezone {zone!r} (e.g. 'Europe/Paris')") from None
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", hours)
        if not match:
            raise ConfigError(f"{where}: working_hours must look like '09:00-18:00', not {hours!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (0 <= h1 < 24 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60):
            raise ConfigError(f"{where}: working_hours {hours!r} is not a time range")
        unknown = [d for d in days if d.lower()[:3] not in DAYS]
        if unknown:
            raise ConfigError(f"{where}: working_days has {unknown[0]!r}; use mon, tue, ... sun")
        end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
        return cls(tz, time(h1, m1), end, frozenset(DAYS.index(d.lower()[:3]) for d in days))

    def outside(self, when: datetime | None) -> str:
        """Why `when` is outside working time ('' when inside or unknown)."""
        if when is None:
            return ""
        local = when.astimezone(self.zone) if self.zone else when.astimezone()
        if local.weekday() not in self.days:
            return f"sent on {DAYS[local.weekday()]} {local:%H:%M}, not a working day"
        if not self.start <= local.time() <= self.end:
            return f"sent at {local:%H:%M}, outside working hours"
        return ""


def _bag(text: str) -> Counter[str]:
    return Counter(w for w in re.findall(r"\w+", fold(text)) if len(w) > 2 and w not in STOPWORDS)


def similarity(text: str, earlier: Sequence[str]) -> float:
    """Cosine similarity of content words between the inquiry and the closest earlier reply."""
    bag = _bag(text)
    norm = math.sqrt(sum(v * v for v in bag.values()))
    best = 0.0
    for other in earlier:
        theirs = _bag(other)
        dot = sum(v * theirs[w] for w, v in bag.items())
        other_norm = math.sqrt(sum(v * v for v in theirs.values()))
        if dot and norm and other_norm:
            best = max(best, dot / (norm * other_norm))
    return round(best, 3)
