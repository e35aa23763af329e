"""The search query people type -> the full-text query each backend runs.

One syntax on both backends, as search engines take it: words (all must match), ``"a
phrase"``, ``OR`` between alternatives, ``-word`` (or ``NOT word``) to exclude, ``prefix*``,
``title:word``, and parentheses to group. Everyday text works as typed: a term with inner
punctuation (``COVID-19``, ``end-to-end``, ``U.S.``, ``don't``, ``c++``) is searched as the
phrase of its words, the way it was indexed; an operator with nothing to act on is dropped.
What is left that cannot be searched is a `QueryError` that says how to write the query.

SQLite gets an FTS5 expression in which every term is a quoted string (FTS5's barewords
allow no punctuation: ``COVID-19`` was read as the column ``19``). PostgreSQL gets the same
query as a tree (`query_tree`), which `ingest.search` builds from one ``websearch_to_tsquery``
per term (a phrase of its words, in the article's language) joined with tsquery's operators;
there, ``prefix*`` and ``title:`` search the plain word. On both, a term's Chinese or
Japanese is searched as the index holds it: bigrams, a lone character as a prefix (`ingest.cjk`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.cjk import query_words
from ingest.errors import QueryError

HOW = 'write words, "a phrase", OR, -word to exclude, prefix*, title:word'
COLUMNS = frozenset({"title", "text"})
_TOKENS = re.compile(r'\s*(?:(?P<phrase>-?(?:\w+:)?"[^"]*"?)|(?P<paren>[()])|(?P<word>[^\s()"]+))')
_OPERATORS = frozenset({"OR", "AND", "NOT"})


@dataclass(frozen=True, slots=True)
class _Term:
    text: str  # the words, as typed
    column: str | None = None
    prefix: bool = False
    negated: bool = False

    def fts5(self) -> str:
        words, lone = query_words(self.text)  # CJK as indexed (`ingest.cjk`)
        phrase = '"' + words.replace('"', '""') + '"' + ("*" if self.prefix or lone else "")
        return f"{self.column} : {phrase}" if self.column else phrase


def _term(raw: str) -> _Term | None:
    """One typed term: ``-``, ``column:``, ``"…"``, ``*`` read off; None if no words remain."""
    negated = raw.startswith("-") and len(raw) > 1
    raw = raw[1:] if negated else raw
    column = None
    head, colon, rest = raw.partition(":")
    if colon and head.lower() in COLUMNS and rest:
        column, raw = head.lower(), rest
    quoted = raw.startswith('"')
    text = raw.strip('"')
    prefix = not quoted and text.endswith("*")
    text = text.rstrip("*") if prefix else text
    if not re.search(r"\w", text):
        return None  # only punctuation: nothing the index holds
    return _Term(text, column, prefix, negated)


def parse(typed: str) -> tuple[list[_Term | str], list[_Term]]:
    """The query ``typed`` as what to find (terms, operators and parentheses, in an order
    FTS5 accepts) and what to exclude; a `QueryError` if there is nothing to find."""
    items: list[_Term | str] = []  # terms, "OR", "AND", "NOT", "(", ")"
    for match in _TOKENS.finditer(typed):
        if match.group("paren"):
            items.append(match.group("paren"))
        elif (word := match.group("word")) in _OPERATORS:
            items.append(word)
        elif (term := _term(match.group("phrase") or word or "")) is not None:
            items.append(term)
    negated = [i for i in items if isinstance(i, _Term) and i.negated]
    items = [i for i in items if not (isinstance(i, _Term) and i.negated)]
    # "NOT word" is "-word" when there is nothing before it to subtract from.
    positive = _tidy(items, negated)
    if not positive:
        if negated:
            raise QueryError(f"{typed!r} only excludes words: add a word to find ({HOW})")
        raise QueryError(f"{typed!r} has no words to search for ({HOW})")
    return positive, negated


def terms(typed: str) -> list[tuple[str, bool]]:
    """The terms the query ``typed`` looks for (not those it excludes): (text, prefix)."""
    return [(i.text, i.prefix) for i in parse(typed)[0] if isinstance(i, _Term)]


def fts5_query(typed: str) -> str:
    """The FTS5 MATCH expression for the query ``typed`` (see the module docstring)."""
    positive, negated = parse(typed)
    query = " ".join(i.fts5() if isinstance(i, _Term) else i for i in positive)
    if negated:
        query = f"({query}) NOT ({' OR '.join(t.fts5() for t in negated)})"
    return query


# A query as a tree, for backends that combine queries themselves: ("or" | "and", [nodes]),
# ("not", [what, excluded]), or a term.
Node = _Term | tuple[str, list["Node"]]


def query_tree(typed: str) -> Node:
    """The query ``typed`` as a tree, with FTS5's precedence: NOT, then AND, then OR."""
    positive, negated = parse(typed)
    items = list(positive)
    tree = _or(items)
    if negated:
        tree = ("not", [tree, ("or", list(negated)) if len(negated) > 1 else negated[0]])
    return tree


def _or(items: list[_Term | str]) -> Node:
    parts = [_and(items)]
    while items and items[0] == "OR":
        items.pop(0)
        parts.append(_and(items))
    return parts[0] if len(parts) == 1 else ("or", parts)


def _and(items: list[_Term | str]) -> Node:
    parts = [_not(items)]
    while items and items[0] not in ("OR", ")"):
        if items[0] == "AND":
            items.pop(0)
        parts.append(_not(items))
    return parts[0] if len(parts) == 1 else ("and", parts)


def _not(items: list[_Term | str]) -> Node:
    node = _atom(items)
    while items and items[0] == "NOT":
        items.pop(0)
        node = ("not", [node, _atom(items)])
    return node


def _atom(items: list[_Term | str]) -> Node:
    item = items.pop(0)
    if item == "(":
        node = _or(items)
        if items and items[0] == ")":
            items.pop(0)
        return node
    assert isinstance(item, _Term), item  # `parse` leaves no operator without its terms
    return item


def _tidy(items: list[_Term | str], negated: list[_Term]) -> list[_Term | str]:
    """Drop what FTS5 would refuse: operators with no term on one side, unbalanced or empty
    parentheses; a NOT with nothing before it becomes an exclusion."""
    depth = 0
    balanced: list[_Term | str] = []
    for item in items:
        if item == ")" and depth == 0:
            continue
        depth += item == "("
        depth -= item == ")"
        balanced.append(item)
    while depth > 0:  # unclosed: drop the last unmatched "("
        at = max(i for i, item in enumerate(balanced) if item == "(")
        del balanced[at]
        depth -= 1
    out: list[_Term | str] = []
    for n, item in enumerate(balanced):
        if item in _OPERATORS:
            before = out[-1] if out else None
            after = balanced[n + 1] if n + 1 < len(balanced) else None
            if item == "NOT" and (before is None or before == "(" or before in _OPERATORS):
                if isinstance(after, _Term):  # "NOT word" alone: an exclusion
                    negated.append(_Term(after.text, after.column, after.prefix, True))
                    balanced[n + 1] = ""  # consumed
                continue
            if before is None or before == "(" or before in _OPERATORS:
                continue
            if after is None or after == ")" or after in _OPERATORS or after == "":
                continue
        elif item == "":
            continue
        elif item == ")" and out and out[-1] == "(":
            out.pop()  # "()": nothing inside
            continue
        out.append(item)
    while out and out[-1] in _OPERATORS:
        out.pop()
    return out
