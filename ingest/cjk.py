"""Chinese and Japanese text, as the search index holds it and as a query matches it.

Both write words without spaces between them, so the tokenizers of both backends (FTS5's
unicode61, PostgreSQL's default parser) take a whole run of CJK characters as one word, found
only by a query for the whole run. The index holds each run as its overlapping bigrams plus
its last character ("東京都心" -> "東京 京都 都心 心"); everything else is left as it is. A
query's run of 2+ characters is then the phrase of its bigrams, found anywhere in a run; a
single character is a prefix (any bigram it starts, or a run's last character).

SQLite runs `index_text` as the SQL function ``ingest_cjk`` (registered on every connection by
`ingest.dbsession`; the FTS5 triggers of migration 0009 call it). PostgreSQL has its own
``ingest_cjk`` written in SQL by the same migration: changing what this module indexes needs
a migration that rebuilds both indexes.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterable

# The characters of Chinese and Japanese words: the iteration marks 々〆〇〻, hiragana and
# katakana letters (not ・, which separates words), CJK ideographs (all extensions and the
# compatibility blocks), half-width katakana. Hangul is not here: Korean puts spaces between
# words. Each is a token character to unicode61 (letters, Nl; checked for ideographs newer than
# its Unicode 6.1 too), so a bigram stays one token.
CJK = (
    "\u3005-\u3007\u303b\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_RUN = re.compile(f"[{CJK}]+")
_ANY = re.compile(f"[{CJK}]")  # half the time of `_RUN` to find that there is none
_LATIN_WORD = f"[^\\W{CJK}]"  # a word character that is not CJK
SNIPPET_CHARS = 100  # a CJK snippet's length: about what FTS5's 24 tokens show of English


def _grams(run: str, *, last: bool = True) -> str:
    grams = [run[i : i + 2] for i in range(len(run) - 1)]
    return " ".join([*grams, run[-1]] if last or len(run) == 1 else grams)


def index_text(text: str | None) -> str | None:
    """``text`` as the index holds it: each CJK run as its bigrams and its last character,
    set apart by spaces from what surrounds it; text without CJK is returned as it is."""
    # The search index calls this on every title and text it stores: most have no CJK.
    if text is None or text.isascii() or not _ANY.search(text):
        return text
    return _RUN.sub(lambda m: f" {_grams(m.group())} ", text)


def query_words(text: str) -> tuple[str, bool]:
    """A query term's ``text`` as the words to search as a phrase, and whether its last word is
    a lone CJK character to search as a prefix. A run that ends inside the term ends a run of
    the article too (its last character is indexed after its bigrams); one at the term's end
    may go on in the article, so only its bigrams are searched."""
    if not _RUN.search(text):
        return text, False
    text = re.sub(r"[\W_]+$", "", text)
    runs = list(_RUN.finditer(text))
    words, position = [], 0
    for run in runs:
        at_end = run.end() == len(text)
        words += [text[position : run.start()], _grams(run.group(), last=not at_end)]
        position = run.end()
    words.append(text[position:])
    lone = runs[-1].end() == len(text) and len(runs[-1].group()) == 1
    return " ".join(w for w in words if w.strip()), lone


def register(connection: sqlite3.Connection) -> None:
    """Make ``ingest_cjk`` callable on an SQLite connection (the FTS5 triggers need it)."""
    connection.create_function("ingest_cjk", 1, index_text, deterministic=True)


def has_cjk(*texts: str | None) -> bool:
    return any(text and _RUN.search(text) for text in texts)


def _fold(text: str) -> str:
    """``text`` lower-cased and, outside CJK (where が is not か), without diacritics, as the
    index folds it: one character for each, so offsets hold."""
    return "".join(
        c if _RUN.match(c) else unicodedata.normalize("NFD", c)[0].lower()[:1] for c in text
    )


def _pattern(text: str, prefix: bool) -> re.Pattern[str] | None:
    """Where a query term matches in text: its CJK runs anywhere, its other words whole."""
    pieces = re.findall(f"[{CJK}]+|{_LATIN_WORD}+", _fold(text))
    if not pieces:
        return None
    parts = []
    for n, piece in enumerate(pieces):
        if _RUN.fullmatch(piece):
            parts.append(re.escape(piece))
            continue
        tail = f"{_LATIN_WORD}*" if prefix and n == len(pieces) - 1 else f"(?!{_LATIN_WORD})"
        parts.append(f"(?<!{_LATIN_WORD}){re.escape(piece)}{tail}")
    return re.compile(r"[\W_]*".join(parts))


def snippet(
    title: str | None, text: str | None, terms: Iterable[tuple[str, bool]], marks: tuple[str, str]
) -> str:
    """A snippet of an article with CJK in it, made from its own text: the search engines'
    snippets tokenize the original text, whose CJK runs are not the index's bigrams, and would
    mark the wrong words. The text around the first match (else the title's), every match of a
    term (text, prefix) in it between ``marks``."""
    patterns = [p for t, prefix in terms if (p := _pattern(t, prefix)) is not None]
    for source in (text or "", title or ""):
        folded = _fold(source)
        spans = sorted((m.start(), m.end()) for p in patterns for m in p.finditer(folded))
        spans = [s for s in spans if s[1] > s[0]]
        if spans:
            break
    else:
        source, spans = text or title or "", []
    start = max(0, spans[0][0] - SNIPPET_CHARS // 4) if spans else 0
    end = min(len(source), start + SNIPPET_CHARS)
    out, position = [], start
    for s, e in spans:
        s, e = max(s, position), min(e, end)
        if s >= e:
            continue  # overlaps one already marked, or past the window
        out += [source[position:s], marks[0], source[s:e], marks[1]]
        position = e
    out.append(source[position:end])
    shown = " ".join("".join(out).split())
    return ("…" if start > 0 else "") + shown + ("…" if end < len(source) else "")
