"""Plain-text helpers shared by parsing, rules and the model: pure functions on strings."""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "«": '"', "»": '"', "\u00a0": " "})


_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


def fold(text: str) -> str:
    """Lower-case, accent-free, typographic quotes made plain: what rules and model match on."""
    text = text.translate(_APOSTROPHES)
    if text.isascii():
        return text.casefold()
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text)).casefold()


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset(
        "p div br li tr h1 h2 h3 h4 h5 h6 blockquote pre table ul ol section article".split()
    )
    _SKIP = frozenset(("script", "style", "head", "title"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable text from HTML, for messages that have no plain part (the stdlib parser never
    raises on broken markup, which real mail has plenty of)."""
    extractor = _TextExtractor()
    try:
        extractor.feed(markup)
        extractor.close()
    except (AssertionError, ValueError):  # pragma: no cover - very old broken markup
        return html.unescape(re.sub(r"<[^>]+>", " ", markup))
    lines = (
        re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in "".join(extractor.parts).split("\n")
    )
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# Lines that start the quoted earlier message or the signature; everything from there is cut.
_CUT_MARKERS = re.compile(
    r"""^(?:
        -- ?$                                   # RFC 3676 signature delimiter
      | -{2,}\s*(?:original\ message|message\ d'origine|message\ original)\s*-{2,}
      | _{10,}$                                 # Outlook's rule above the quoted header
      | (?:from|de|von)\s*:\s.+$                # a quoted header block (Outlook)
      | on\ .{4,120}\ wrote:\s*$                # Gmail, Apple Mail
      | le\ .{4,120}\ a\ ecrit\s*:\s*$
      | (?:sent|envoye)\ (?:from|de|depuis)\ (?:my|mon)\ .{2,30}$
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def new_text(text: str) -> str:
    """The part of a message its sender wrote now: without quoted replies and signature."""
    kept: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        folded = fold(line).strip()
        if _CUT_MARKERS.match(folded) and (kept or index > 0):
            break
        # "On Mon, 3 Mar 2025, Claire" + newline + "<claire@x> wrote:" split over two lines.
        if (
            index + 1 < len(lines)
            and re.match(r"^(on|le) .{4,100}$", folded)
            and re.search(r"(wrote|a ecrit)\s*:\s*$", fold(lines[index + 1]))
        ):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


_STOPWORDS = {
    "en": frozenset(
        "the and you your to of is for my i it that this with have be are on not can would "
        "we me will but at if from please thanks could just about like".split()
    ),
    "fr": frozenset(
        "le la les et vous votre vos de des du un une pour je est pas que qui mon ma mes "
        "sur avec nous merci bonjour cordialement ce cette il elle suis au aux en ne "
        "c'est j'ai n'est d'un qu'il est-ce pourriez pouvez voudrais".split()
    ),
}


def detect_language(text: str, default: str = "en") -> str:
    """English or French by stop-word counts: enough for two languages, instant, deterministic."""
    words = re.findall(r"[a-z']+", fold(text[:4000]))
    counts = {lang: sum(1 for w in words if w in stop) for lang, stop in _STOPWORDS.items()}
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] > 0 else default


def quote(text: str, max_lines: int = 200) -> str:
    """The original below a reply, each line prefixed like every mail client does."""
    lines = text.strip().splitlines()
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], "[...]"]
    return "\n".join(">" if not line.strip() else "> " + line for line in lines)
