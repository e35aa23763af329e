"""Page bytes -> clean article: decode, read the page's metadata, fix the tree, extract.

trafilatura runs in precision mode, with readability or recall mode as fallback when it finds
little; `ingest.cleanup` then cleans the body text, `ingest.metadata` merges the page's
metadata with the feed's. This module runs in worker processes (`ingest.workers`): its inputs
and outputs are picklable.
"""

from __future__ import annotations

import copy
from typing import Any

import lxml.html
import trafilatura
from lxml import etree
from trafilatura.readability_lxml import Document as Readability

from ingest.anchors import post_article
from ingest.bylines import split_authors
from ingest.cleanup import clean_paragraphs, word_count
from ingest.dates import parse_time
from ingest.decoding import decode_html
from ingest.errors import ExtractionError
from ingest.markup import clean_text, text_key
from ingest.metadata import merge_hints, page_metadata
from ingest.pagefix import prepare_tree
from ingest.records import ExtractedArticle, Hints

# Parse as trafilatura does: a comment inside a paragraph ("When <!-- -->President") would
# otherwise cut the text after it.
_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, collect_ids=False)


# Below this many words, precision mode may have kept a notice or a teaser of the story: look
# wider, and take the wider text if it is at least twice as long.
SHORT_BODY_WORDS = 150
WIDER_FACTOR = 2
_READABLE_BLOCKS = ("p", "li", "h2", "h3", "h4", "blockquote")


def _trafilatura(tree: Any, url: str | None, *, precise: bool) -> Any:
    return trafilatura.bare_extraction(
        tree,
        url=url,
        favor_precision=precise,
        # Its own fallback comparison (readability, jusText on every page) costs a third of the
        # time and changes nothing on the benchmark: `_body` falls back only when it is needed.
        fast=True,
        favor_recall=not precise,
        include_comments=False,
        include_tables=True,
        # Metadata is read by `page_metadata`; trafilatura's own (with htmldate's date search)
        # costs a fifth of the extraction and is asked for only when the page lacks some.
        with_metadata=False,
        deduplicate=False,
    )


def _readable_text(tree: Any) -> str:
    """The body readability's scoring picks, one line per block."""
    # readability rewrites the tree it is given
    summary = lxml.html.fromstring(Readability(copy.deepcopy(tree)).summary())
    blocks = (
        " ".join(block.text_content().split())
        for block in summary.iter(*_READABLE_BLOCKS)
        if not any(a.tag in _READABLE_BLOCKS for a in block.iterancestors())
    )
    return "\n".join(b for b in blocks if b)


def _body(tree: Any, url: str | None) -> str:
    """The body text: trafilatura's precision mode, unless it found little: then readability's
    pick, or trafilatura's recall mode, when one of them finds twice as much."""
    document = _trafilatura(tree, url, precise=True)
    text = (document.text or "") if document is not None else ""
    if word_count(text) >= SHORT_BODY_WORDS:
        return text
    readable = _readable_text(tree)
    if word_count(readable) >= WIDER_FACTOR * word_count(text):
        return readable
    wider = _trafilatura(tree, url, precise=False)
    if wider is not None and word_count(wider.text) >= WIDER_FACTOR * word_count(text):
        return wider.text or ""
    return text


def _headlines(tree: Any, document: Any) -> list[str]:
    """The forms of the headline a page shows: ``<h1>``s, ``<title>``, trafilatura's title."""
    found = [clean_text(h1.text_content()) for h1 in tree.iter("h1")]
    found.append(clean_text(tree.findtext(".//title")))
    found.append(clean_text(document.title) if document is not None else None)
    return [h for h in found if h]


def _link_shares(tree: Any) -> dict[str, float]:
    """`text_key` of every link and list item -> the share of its text inside links."""
    shares = {k: 1.0 for k in (text_key(a.text_content()) for a in tree.iter("a")) if k}
    for block in tree.iter("li"):
        key = text_key(block.text_content())
        if key and key not in shares:
            linked = sum(len(text_key(a.text_content())) for a in block.iter("a"))
            shares[key] = min(1.0, linked / len(key))
    return shares


def extract_article(
    html: str | bytes,
    url: str | None = None,
    *,
    content_type: str | None = None,
    hints: Hints | None = None,
    fragment: str | None = None,
) -> ExtractedArticle:
    """The clean article of a page, page metadata first and ``hints`` (the feed) as fallback;
    with ``fragment``, the post it names on a page of several (`ingest.anchors`).

    Raises `ExtractionError` when the page has no article text.
    """
    where = url or "(page)"
    text = decode_html(html, content_type) if isinstance(html, bytes) else html
    if not text.strip():
        raise ExtractionError("empty page", url=where, reason="empty_page")
    try:
        tree = lxml.html.document_fromstring(text, parser=_PARSER)
    except (etree.ParserError, ValueError) as exc:
        raise ExtractionError(f"unparseable HTML: {exc}", url=where, reason="bad_html") from exc
    if fragment is not None:
        return post_article(tree, url, fragment, hints or Hints())
    meta = page_metadata(tree, url)
    document = None
    if not (meta.title and meta.published):
        document = trafilatura.extract_metadata(tree, default_url=url)
    links = _link_shares(tree)
    prepare_tree(tree)
    body = _body(tree, url)
    if not body.strip():
        raise ExtractionError("no article text found", url=where)

    if document is not None:
        meta.title = meta.title or clean_text(document.title)
        meta.site_name = meta.site_name or clean_text(document.sitename)
        meta.description = meta.description or clean_text(document.description)
    paragraphs, byline = clean_paragraphs(
        body.split("\n"),
        title=meta.title,
        description=meta.description,
        headlines=_headlines(tree, document),
        links=links,
    )
    if not paragraphs:
        raise ExtractionError("no article text left after cleaning", url=where)
    # The body's byline and trafilatura's author (read only when the page lacked a title or a
    # date) are the least trusted sources: they add names and agencies, never replace them.
    meta.add_bylines(byline, split_authors(document.author if document is not None else None))
    if not meta.published and document is not None and document.date:
        meta.published, meta.published_date_only = parse_time(document.date)
    return merge_hints(meta, "\n\n".join(paragraphs), hints or Hints())
