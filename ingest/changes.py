"""What changed between two states of an article: whether it is worth a version, and a word diff.

A page looked at again often differs in ways that say nothing new: whitespace, typographic
quotes, a "Last updated 3:45 PM" line or a "2 hours ago" stamp. Those are not versions. A
rewritten headline, a paragraph removed, a correction appended, one word changed: those are.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

# Words a timestamp line is made of besides its numbers: months, days, units, zones, and the
# few words that introduce one ("Updated", "Published", "Last modified on").
_DATE_WORDS = frozenset(
    """
    jan january feb february mar march apr april may jun june jul july aug august sep sept
    september oct october nov november dec december mon monday tue tues tuesday wed wednesday
    thu thur thurs thursday fri friday sat saturday sun sunday am pm a p m utc gmt bst cet cest
    est edt cst cdt mst mdt pst pdt jst ist aest aedt z sec secs second seconds min mins minute
    minutes hr hrs hour hours day days week weeks ago just now today yesterday updated update
    published posted modified edited revised last first originally on at as of time date
    aktualisiert veröffentlicht stand uhr am um actualizado publicado actualisé publié mis
    jour le à aggiornato pubblicato bijgewerkt gepubliceerd om
    """.split()
)
# Words that say a line is about when the page changed: with one, a few more words may stand
# around the time ("This article was last updated at 11:52 GMT").
_UPDATE_WORDS = frozenset(
    "updated modified edited revised published posted aktualisiert actualizado actualisé "
    "aggiornato bijgewerkt".split()
)
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(st|nd|rd|th)?")
# A year, a clock time ("9:14", "14h35") or a numeric date ("05/03/2025", "12.03.2025").
_TIMEISH = re.compile(r"\b(19|20)\d\d\b|\d{1,2}[:h]\d{2}\b|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"'})
_STAMP_MAX_CHARS = 80  # a longer line says more than when


def is_timestamp_line(line: str) -> bool:
    """A short line that is a time and little else ("Updated 3:45 PM EDT, March 5, 2025",
    "Aktualisiert am 12.03.2025, 14:35 Uhr", "2 hours ago"): it changes without the story
    changing."""
    if len(line) > _STAMP_MAX_CHARS:
        return False
    words = _WORD.findall(line.lower())
    numbers = sum(1 for w in words if _NUMBER.fullmatch(w))
    if not numbers:
        return False
    dated = sum(1 for w in words if w in _DATE_WORDS)
    if not dated and not _TIMEISH.search(line):
        return False  # numbers, but not a time ("Score: 3-2")
    other = len(words) - numbers - dated
    allowed = 4 if any(w in _UPDATE_WORDS for w in words) else 2
    return other <= allowed and other <= numbers + dated


def _normal(line: str) -> str:
    line = unicodedata.normalize("NFKC", line).translate(_QUOTES)
    return " ".join(line.split())


def meaningful_lines(text: str | None) -> list[str]:
    """The text's lines as compared: normalised, blank and timestamp lines left out."""
    lines = (_normal(line) for line in (text or "").splitlines())
    return [line for line in lines if line and not is_timestamp_line(line)]


def is_meaningful_change(
    old_title: str | None, old_text: str | None, new_title: str | None, new_text: str | None
) -> bool:
    """Whether the new state says something the old did not: its title or its text differs
    by more than whitespace, quotes and timestamp lines. A new state with no text at all is
    not one (a page that failed to extract is not a story emptied)."""
    if not (new_text or "").strip():
        return False
    if new_title and _normal(new_title) != _normal(old_title or ""):
        return True
    return meaningful_lines(old_text) != meaningful_lines(new_text)


Op = Literal["equal", "delete", "insert"]


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of the word diff: text kept, removed or added (with its own spacing)."""

    op: Op
    text: str


_TOKEN = re.compile(r"\n+|[^\S\n]+|[^\s]+")


def _tokens(text: str) -> list[str]:
    """Words, runs of spaces and paragraph breaks: joined again they give the text back."""
    return _TOKEN.findall(text)


def word_diff(old: str | None, new: str | None) -> list[Piece]:
    """The word-level diff from ``old`` to ``new``, as runs (adjacent runs of one kind merged)."""
    a, b = _tokens(old or ""), _tokens(new or "")
    pieces: list[Piece] = []

    def add(op: Op, tokens: Sequence[str]) -> None:
        text = "".join(tokens)
        if not text:
            return
        if pieces and pieces[-1].op == op:
            pieces[-1] = Piece(op, pieces[-1].text + text)
        else:
            pieces.append(Piece(op, text))

    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", a[i1:i2])
            continue
        if tag in ("delete", "replace"):
            add("delete", a[i1:i2])
        if tag in ("insert", "replace"):
            add("insert", b[j1:j2])
    return pieces


def by_line(piece: Piece) -> Iterator[Piece]:
    """A run cut at its line breaks, the breaks as kept text of their own: marks around a
    removed or added run then never span a paragraph break."""
    for part in re.split(r"(\n+)", piece.text):
        if part:
            yield Piece("equal" if part.startswith("\n") else piece.op, part)


def count_changes(old: str | None, new: str | None) -> tuple[int, int]:
    """Characters (spaces not counted) added and removed from ``old`` to ``new``: what
    `chars_changed` counts of their `word_diff`, for half its work (words only, no runs)."""
    a, b = (old or "").split(), (new or "").split()
    added = removed = 0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("delete", "replace"):
            removed += sum(map(len, a[i1:i2]))
        if tag in ("insert", "replace"):
            added += sum(map(len, b[j1:j2]))
    return added, removed


def chars_changed(pieces: Sequence[Piece]) -> tuple[int, int]:
    """Characters (spaces not counted) added and removed by a diff."""
    added = sum(len("".join(p.text.split())) for p in pieces if p.op == "insert")
    removed = sum(len("".join(p.text.split())) for p in pieces if p.op == "delete")
    return added, removed


def changed_paragraphs(pieces: Sequence[Piece]) -> Iterator[list[Piece] | None]:
    """The diff cut into paragraphs, only those with a change; None stands for the unchanged
    paragraphs between two that changed (shown as an ellipsis)."""
    paragraph: list[Piece] = []
    skipped = False
    given = False

    def split(piece: Piece) -> Iterator[Piece | None]:
        # A paragraph break ends the paragraph (None marks it), kept, added or removed alike.
        for part in re.split(r"(\n+)", piece.text):
            if part.startswith("\n"):
                yield None
            elif part:
                yield Piece(piece.op, part)

    def flush() -> Iterator[list[Piece] | None]:
        nonlocal skipped, given
        if any(p.op != "equal" for p in paragraph):
            if skipped and given:
                yield None
            yield list(paragraph)
            given, skipped = True, False
        elif paragraph:
            skipped = True
        paragraph.clear()

    for piece in pieces:
        for part in split(piece):
            if part is None:
                yield from flush()
            else:
                paragraph.append(part)
    yield from flush()
