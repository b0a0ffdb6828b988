"""The eight labels: the one list that rules, model, templates and reports share."""

from typing import Final

NONE: Final = "none"

#: The seven refusal situations of the article, in the article's order.
REFUSALS: Final[tuple[str, ...]] = (
    "guarantee",
    "out_of_scope",
    "already_helped",
    "third_party",
    "disrespect",
    "private_time",
    "cannot_pay",
)

LABELS: Final[tuple[str, ...]] = (*REFUSALS, NONE)

LANGUAGES: Final[tuple[str, ...]] = ("en", "fr")
