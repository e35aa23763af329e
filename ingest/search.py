"""Full-text search and the read-side filters, in each backend's SQL.

SQLite: an FTS5 index (``articles_fts``, migration 0001) ranked with BM25, over a bounded
window of the newest matches for very common words. PostgreSQL: a tsvector per article in its
language (``articles.search``, migration 0003), one GIN-indexed branch per language.
`Store.search` (`ingest.reads`) opens the session; the SQL is here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ingest import cjk
from ingest.entryparts import language_tag
from ingest.errors import QueryError
from ingest.models import Article, Entry, Feed, UTCDateTime
from ingest.querytext import Node, fts5_query, query_tree, terms

SNIPPET_OPEN, SNIPPET_CLOSE = "\x02", "\x03"  # highlight markers; the CLI renders them
MARKS = (SNIPPET_OPEN, SNIPPET_CLOSE)
# Languages PostgreSQL search stems for (ingest_ts_config, migration 0003); others: 'simple'.
SEARCH_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "ru", "sv", "da", "no", "fi")
# SQLite: a query matching more articles than this ranks only its newest this many (see
# `Store.search`); measured with bench.archive on a million articles (README, Performance).
RANK_WINDOW = 10_000
# SQLite: the columns search filters read, all in one covering index (migration 0005).
_FILTER_ROWS = sa.text(
    "SELECT id, language, published, created_at, authors "
    "FROM articles INDEXED BY ix_articles_search_filters"
).columns(
    sa.column("id", sa.Integer),
    sa.column("language", sa.String),
    sa.column("published", UTCDateTime()),
    sa.column("created_at", UTCDateTime()),
    sa.column("authors", sa.JSON),
)


@dataclass(frozen=True, slots=True)
class SearchHit:
    article: Article
    feed_url: str
    snippet: str
    rank: float
    copies: int | None = None  # collapsed (`Store.search_stories`): the story's other articles


@dataclass(frozen=True, slots=True)
class Filters:
    """Read-side filters shared by search and export."""

    feed: str | None = None  # name or URL
    tag: str | None = None  # a tag of the feeds that listed it (the config's `tags`)
    since: datetime | None = None
    until: datetime | None = None
    author: str | None = None
    language: str | None = None
    status: str | None = None  # pending, ok or failed
    content_source: str | None = None  # page or feed


# Where a page of hits starts: after the hit with this (rank, id), in the search's order.
Keyset = tuple[float, int]


def checked(session: Session, filters: Filters) -> Filters:
    """``filters`` as the archive keeps what they name (``en-US`` is ``en``); a filter that
    names nothing (a feed not in the archive, a language that is no language code) is a
    `QueryError` saying so, not an empty answer."""
    if filters.language is not None:
        tag = language_tag(filters.language)
        if tag is None:
            raise QueryError(
                f"{filters.language!r} is not a language code: use one such as en, de, ja"
            )
        filters = replace(filters, language=tag)
    if filters.feed is not None:
        named = (col(Feed.name) == filters.feed) | (col(Feed.url) == filters.feed)
        if session.exec(select(Feed.id).where(named).limit(1)).first() is None:
            raise QueryError(
                f"no feed {filters.feed!r} in the archive: `ingest feeds` lists the names "
                "and URLs a --feed filter takes"
            )
    if filters.tag is not None:
        tagged = _tagged(filters.tag, postgres=session.get_bind().dialect.name == "postgresql")
        if session.exec(select(Feed.id).where(tagged).limit(1)).first() is None:
            raise QueryError(
                f"no feed tagged {filters.tag!r} in the archive: `ingest feeds` lists each "
                "feed's tags (tags = [...] under [[feeds]] in the config)"
            )
    return filters


def _tagged(tag: str, *, postgres: bool) -> Any:
    """Feeds whose tags include ``tag``, as written (tags are few: a feed's JSON list is read
    whole)."""
    feeds = Feed.__table__
    elements = sa.func.json_array_elements_text if postgres else sa.func.json_each
    tags = elements(feeds.c.tags).table_valued("value")
    return sa.exists().where(tags.c.value == tag).correlate(feeds)


def _feed_ids(filters: Filters, *, postgres: bool) -> Any:
    """The ids of the feeds ``filters`` name (by name or URL, by tag, or both)."""
    query = select(Feed.id)
    if filters.feed:
        query = query.where((col(Feed.name) == filters.feed) | (col(Feed.url) == filters.feed))
    if filters.tag:
        query = query.where(_tagged(filters.tag, postgres=postgres))
    return query


def filtered(
    query: Any, filters: Filters, *, postgres: bool, articles: Any = None, ids: Any = None
) -> Any:
    """``query`` narrowed to the articles matching ``filters``; ``articles`` is where the
    filter columns are read (default: the table itself), ``ids`` the article ids (default:
    its ``id``)."""
    articles = Article.__table__ if articles is None else articles
    ids = articles.c.id if ids is None else ids
    when = sa.func.coalesce(articles.c.published, articles.c.created_at)
    if filters.feed or filters.tag:
        feed_ids = _feed_ids(filters, postgres=postgres)
        if postgres:
            query = query.where(
                sa.exists().where(col(Entry.article_id) == ids, col(Entry.feed_id).in_(feed_ids))
            )
        else:
            # SQLite collects the feed's article ids once into a temporary index, where
            # a correlated EXISTS would search `entries` once per candidate article. The
            # "+ 0" keeps those ids from driving a search: FTS5 would then run the query
            # again for each id, recounting every word's matches for bm25 each time.
            listed = select(Entry.article_id).where(col(Entry.feed_id).in_(feed_ids))
            query = query.where((ids + 0).in_(listed))
    if filters.since:
        query = query.where(when >= filters.since)
    if filters.until:
        query = query.where(when < filters.until)
    if filters.language:
        query = query.where(articles.c.language == filters.language.lower())
    if filters.author:
        elements = sa.func.json_array_elements_text if postgres else sa.func.json_each
        authors = elements(articles.c.authors).table_valued("value")
        if not postgres and _verbatim_in_json(filters.author):
            # A cheap test of the JSON text first (SQLite's LIKE ignores ASCII case, as
            # ILIKE here does); json_each, which costs more, only for the rows it lets by.
            as_text = sa.type_coerce(articles.c.authors, sa.String)
            query = query.where(as_text.like(f"%{filters.author}%"))
        query = query.where(
            sa.exists().where(authors.c.value.ilike(f"%{filters.author}%")).correlate(articles)
        )
    for name in ("status", "content_source"):
        value = getattr(filters, name)
        if value:
            column = articles.c.get(name)
            if column is None:  # not among the columns read (SQLite's covering index)
                table = Article.__table__
                column = select(table.c[name]).where(table.c.id == ids).scalar_subquery()
            query = query.where(column == value)
    return query


def _after(rank: Any, ids: Any, after: Keyset | None, *, descending: bool) -> Any:
    """Hits past ``after`` in the order (rank, then id descending)."""
    if after is None:
        return sa.true()
    past = rank < after[0] if descending else rank > after[0]
    return past | ((rank == after[0]) & (ids < after[1]))


def sqlite_search(
    session: Session,
    text: str,
    filters: Filters,
    limit: int,
    rank_window: int | None,
    *,
    newest: bool = False,
    after: Keyset | None = None,
) -> list[SearchHit]:
    """FTS5: BM25 over the newest ``rank_window`` matches (None: every match); with
    ``newest``, every match by date, newest first (rank: minus the date's Julian day)."""
    # Two steps: the ids of the best matches from the index alone (joining the filter
    # columns only for filters), then rows and snippets of those only. In one statement
    # SQLite loads every matching article, text and snippet included, before sorting: 3x
    # slower on a million articles for common words. No bm25() in step two: with `rowid
    # IN` FTS5 would recount the word statistics once per id.
    fts = sa.table("articles_fts", sa.column("rowid"), sa.column("articles_fts"))
    match = sa.literal_column("articles_fts").op("MATCH")(fts5_query(text))
    rank: Any = sa.func.bm25(sa.literal_column("articles_fts"), 4.0, 1.0)
    columns = _FILTER_ROWS.subquery("filter_rows")
    if newest:
        rank = -sa.func.julianday(sa.func.coalesce(columns.c.published, columns.c.created_at))
        rank_window = None
    matches = select(fts.c.rowid.label("id"), rank.label("rank")).select_from(fts).where(match)
    if newest or replace(filters, feed=None, tag=None) != Filters():
        # From the covering index, not the table: a row holds the text (6 KB on average),
        # and without ANALYZE statistics SQLite would read it by rowid.
        matches = matches.join(columns, columns.c.id == fts.c.rowid)
        matches = filtered(matches, filters, postgres=False, articles=columns)
    elif filters.feed or filters.tag:  # the match's id is all it needs: no lookup per match
        matches = filtered(matches, filters, postgres=False, ids=fts.c.rowid)
    if rank_window is not None:
        # BM25 is paid per match: two common words match a third of a million articles,
        # and ranking them all took 0.3-1.1 s (search p99 990 ms). FTS5 walks matches in
        # rowid order, which is arrival order (ids grow with time), so the newest matches
        # come cheap: those are ranked, best first. Matched by fewer articles than the
        # window, a query is ranked exactly as without it; above it, an older article
        # comes up only with a narrower query or --until (README, Performance: what it
        # changes, measured).
        matches = matches.order_by(fts.c.rowid.desc()).limit(max(rank_window, limit))
    best = matches.subquery()
    # Equal ranks: newest first, as the window prefers.
    top = (
        select(best.c.id, best.c.rank)
        .where(_after(best.c.rank, best.c.id, after, descending=False))
        .order_by(best.c.rank, best.c.id.desc())
        .limit(limit)
    )
    snippet = sa.func.snippet(
        sa.literal_column("articles_fts"), -1, SNIPPET_OPEN, SNIPPET_CLOSE, "…", 24
    )
    ranked = session.execute(top).all()
    if not ranked:
        return []
    rows = session.exec(
        select(Article, col(Feed.url), snippet)
        .join(fts, fts.c.rowid == col(Article.id))
        .join(Feed, col(Feed.id) == col(Article.feed_id))
        .where(match, fts.c.rowid.in_([article_id for article_id, _ in ranked]))
    ).all()
    found = {a.id: (a, feed_url, snip or "") for a, feed_url, snip in rows}
    return _cjk_snippets([SearchHit(*found[i], float(r)) for i, r in ranked if i in found], text)


def _cjk_snippets(hits: list[SearchHit], text: str) -> list[SearchHit]:
    """``hits`` with the snippets of articles holding CJK made from their text (`cjk.snippet`):
    the backends' own snippets of those mark the wrong words, or none."""
    if not any(cjk.has_cjk(h.article.title, h.article.text) for h in hits):
        return hits
    wanted = terms(text)
    return [
        replace(h, snippet=cjk.snippet(h.article.title, h.article.text, wanted, MARKS))
        if cjk.has_cjk(h.article.title, h.article.text)
        else h
        for h in hits
    ]


def _tsquery(node: Node, config: Any) -> Any:
    """The tsquery of a query tree in text search configuration ``config``: each term a
    phrase of its words (``websearch_to_tsquery`` never fails on what it is given), joined
    with tsquery's own and, or and not (nested calls: the tree's grouping is kept)."""
    if not isinstance(node, tuple):
        words, lone = cjk.query_words(node.text)
        if not lone:
            return sa.func.websearch_to_tsquery(config, '"' + words.replace('"', " ") + '"')
        # A lone CJK character: a prefix, after the phrase of the words before it.
        last = sa.func.to_tsquery(config, words[-1] + ":*")
        head = words[:-1].strip()
        if not head:
            return last
        before = sa.func.websearch_to_tsquery(config, '"' + head.replace('"', " ") + '"')
        return sa.func.tsquery_phrase(before, last)
    kind, parts = node
    queries = [_tsquery(part, config) for part in parts]
    if kind == "not":
        return sa.func.tsquery_and(queries[0], sa.func.tsquery_not(queries[1]))
    joined = queries[0]
    for query in queries[1:]:
        joined = (sa.func.tsquery_and if kind == "and" else sa.func.tsquery_or)(joined, query)
    return joined


def postgres_search(
    session: Session,
    text: str,
    filters: Filters,
    limit: int,
    *,
    newest: bool = False,
    after: Keyset | None = None,
) -> list[SearchHit]:
    """tsvector per language: the query tree per language, ts_rank_cd, ts_headline snippets; with
    ``newest``, by date, newest first (rank: the date's epoch seconds)."""
    # Each article is indexed in its own language's configuration, so it is matched with
    # the query parsed in that configuration: "elections" finds "election" in English,
    # "Wahlen" finds "Wahl" in German. One branch per language keeps every branch on the
    # GIN index (and "-word" means the same thing as in the article's language).
    tree = query_tree(text)  # the same syntax, and errors, as on SQLite
    language = sa.func.coalesce(col(Article.language), "")
    search = sa.literal_column("articles.search")
    wanted = filters.language.lower() if filters.language else None
    branches: list[tuple[Any, Any]] = []  # (which articles, the query for them)
    for code in SEARCH_LANGUAGES:
        if wanted in (None, code):
            query = _tsquery(tree, sa.func.ingest_ts_config(code))
            branches.append((language == code, query))
    if wanted is None or wanted not in SEARCH_LANGUAGES:
        others = _tsquery(tree, sa.func.ingest_ts_config(wanted))
        branches.append((language.not_in(SEARCH_LANGUAGES), others))
    tsquery = sa.case(*branches, else_=branches[-1][1])
    matches = sa.or_(*(which & search.op("@@")(query) for which, query in branches))
    # As float8: a keyset's rank comes back as a Python float, which a real never equals.
    rank: Any = sa.cast(sa.func.ts_rank_cd(search, tsquery), sa.Float(53))
    if newest:
        when = sa.func.coalesce(col(Article.published), col(Article.created_at))
        rank = sa.cast(sa.extract("epoch", when), sa.Float(53))
    best = (
        filtered(select(col(Article.id), rank.label("rank")), filters, postgres=True)
        .where(matches, _after(rank, col(Article.id), after, descending=True))
        .order_by(rank.desc(), col(Article.id).desc())
        .limit(limit)
        .subquery()
    )
    options = (
        f"StartSel={SNIPPET_OPEN}, StopSel={SNIPPET_CLOSE}, MaxWords=24, MinWords=8, "
        'MaxFragments=2, FragmentDelimiter=" … "'
    )
    # Highlight any of the query's words: the text alone may not hold all of them (some
    # can be in the title), and ts_headline would then highlight nothing.
    any_word = sa.func.to_tsquery("simple", sa.func.replace(sa.cast(tsquery, sa.Text), "&", "|"))
    snippet = sa.func.ts_headline(
        sa.func.ingest_ts_config(col(Article.language)),
        sa.func.coalesce(col(Article.text), ""),
        any_word,
        options,
    )
    query = (
        select(Article, col(Feed.url), snippet, best.c.rank)
        .join(best, best.c.id == col(Article.id))
        .join(Feed, col(Feed.id) == col(Article.feed_id))
        .order_by(best.c.rank.desc(), best.c.id.desc())
    )
    rows = session.exec(query).all()
    hits = [SearchHit(a, feed_url, snip or "", float(r)) for a, feed_url, snip, r in rows]
    return _cjk_snippets(hits, text)


def _verbatim_in_json(text: str) -> bool:
    """Whether ``text`` appears as is in the JSON of any string containing it: printable
    ASCII that JSON does not escape, and no LIKE wildcard."""
    return text.isascii() and text.isprintable() and not set(text) & set('"\\%_')
