"""Page bytes -> clean article: decode, read the page's metadata, fix the tree, extract.

trafilatura runs in precision mode, with readability or recall mode as fallback when it finds
little, or little of the page's prose; `ingest.cleanup` then cleans the body text,
`ingest.metadata` merges the page's metadata with the feed's. This module runs in worker
processes (`ingest.workers`): its inputs and outputs are picklable.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection
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
from ingest.pagefix import join_sections, outbound_links, prepare_tree, prose_paragraphs
from ingest.records import ExtractedArticle, Hints

# The version of ingest's own extraction rules (page fixes, fallbacks, clean-up, metadata):
# bump it with every change that changes what a page gives, so that `ingest reextract --all`
# redoes the articles an older version made. With trafilatura's version, it names what made an
# article's text (`articles.extractor`).
EXTRACTION_RULES = 1
EXTRACTOR = f"ingest-{EXTRACTION_RULES}+trafilatura-{trafilatura.__version__}"

# Parse as trafilatura does: a comment inside a paragraph ("When <!-- -->President") would
# otherwise cut the text after it.
_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, collect_ids=False)


# Below this many words, precision mode may have kept a notice or a teaser of the story; below
# this share of the page's prose, a part of it (a long page cut to its intro): look wider, and
# take a wider text when it is half as long again.
SHORT_BODY_WORDS = 150
CUT_SHARE = 0.5
WIDER_FACTOR = 1.5
_READABLE_BLOCKS = ("p", "li", "h2", "h3", "h4", "blockquote")
# What readers are not shown: trafilatura drops it in both modes, readability does not.
_HIDDEN = (
    '//*[@hidden or @aria-hidden="true" or contains(translate(@style, " ", ""), "display:none")'
    ' or contains(translate(@style, " ", ""), "visibility:hidden")]'
)


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


def _text_of(tree: Any, url: str | None, *, precise: bool) -> str:
    document = _trafilatura(tree, url, precise=precise)  # it works on a copy
    return (document.text or "") if document is not None else ""


def _readable_text(tree: Any) -> str:
    """The body readability's scoring picks, one line per block, hidden elements left out."""
    # readability rewrites the tree it is given
    visible = copy.deepcopy(tree)
    for element in visible.xpath(_HIDDEN):
        if element.getparent() is not None:
            element.drop_tree()
    summary = lxml.html.fromstring(Readability(visible).summary())
    blocks = (
        " ".join(block.text_content().split())
        for block in summary.iter(*_READABLE_BLOCKS)
        if not any(a.tag in _READABLE_BLOCKS for a in block.iterancestors())
    )
    return "\n".join(b for b in blocks if b)


def _covered(whole: str, part: str) -> float:
    """The share of ``part``'s words in lines that ``whole`` holds too."""
    held = " ".join(text_key(line) for line in whole.split("\n"))
    keys = [text_key(line) for line in part.split("\n")]
    words = sum(len(key.split()) for key in keys)
    return sum(len(key.split()) for key in keys if key in held) / words if words else 1.0


def _body(tree: Any, url: str | None) -> str:
    """The body text: trafilatura's precision mode, unless it kept little, or little of the
    page's prose. Then, the first that holds more:

    - a body in sections (precision took the first): precision again, the sections joined;
    - readability's pick, if half as long again; but when it found another part of the page
      than precision did (sections judged each alone), recall mode if it holds both, and
      twice as much;
    - readability's pick, if it holds precision's text and a tenth more (20 words at least);
    - recall mode, if half as long again.
    """
    text = _text_of(tree, url, precise=True)
    words = word_count(text)
    paragraphs = prose_paragraphs(tree)
    prose = sum(n for _, n in paragraphs)
    if words >= SHORT_BODY_WORDS and words >= CUT_SHARE * prose:
        return text
    # Joined in place: the fallbacks below read the sections in one piece as well.
    if words < CUT_SHARE * prose and join_sections(tree, paragraphs):
        joined = _text_of(tree, url, precise=True)
        if word_count(joined) >= WIDER_FACTOR * words:
            return joined
    readable = _readable_text(tree)
    readable_words = word_count(readable)
    if readable_words > max(0, WIDER_FACTOR * words - 1):
        if words and _covered(readable, text) < 0.5:
            wider = _text_of(tree, url, precise=False)
            if (
                word_count(wider) >= 2 * readable_words
                and _covered(wider, readable) >= 0.8
                and _covered(wider, text) >= 0.8
            ):
                return wider
        return readable
    if readable_words > max(1.1 * words, words + 20) and _covered(readable, text) >= 0.9:
        return readable
    wider = _text_of(tree, url, precise=False)
    if word_count(wider) > max(0, WIDER_FACTOR * words - 1):
        return wider
    return text


def _headlines(tree: Any, document: Any) -> list[str]:
    """The forms of the headline a page shows: ``<h1>``s, ``<title>``, trafilatura's title."""
    found = [clean_text(h1.text_content()) for h1 in tree.iter("h1")]
    found.append(clean_text(tree.findtext(".//title")))
    found.append(clean_text(document.title) if document is not None else None)
    return [h for h in found if h]


def _link_shares(tree: Any, outbound: Collection[Any]) -> dict[str, float]:
    """`text_key` of every link and list item -> the share of its text inside links. In an
    item with words besides its links (a citation, a link and what it is), links to other
    sites count as text: they are what the item says, not a list of the site's stories."""
    shares = {k: 1.0 for k in (text_key(a.text_content()) for a in tree.iter("a")) if k}
    for block in tree.iter("li"):
        key = text_key(block.text_content())
        if key and key not in shares:
            sizes = [(len(text_key(a.text_content())), a in outbound) for a in block.iter("a")]
            linked = sum(size for size, _ in sizes)
            if linked < len(key):
                linked = sum(size for size, out in sizes if not out)
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
        post = post_article(tree, url, fragment, hints or Hints())
        return dataclasses.replace(post, extractor=EXTRACTOR)
    meta = page_metadata(tree, url)
    document = None
    if not (meta.title and meta.published):
        document = trafilatura.extract_metadata(tree, default_url=url)
    outbound = outbound_links(tree, meta.canonical_url or url)
    links = _link_shares(tree, set(outbound))
    away = {text_key(a.text_content()) for a in outbound}
    prepare_tree(tree, outbound)
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
        outbound=away,
    )
    if not paragraphs:
        raise ExtractionError("no article text left after cleaning", url=where)
    # The body's byline and trafilatura's author (read only when the page lacked a title or a
    # date) are the least trusted sources: they add names and agencies, never replace them.
    meta.add_bylines(byline, split_authors(document.author if document is not None else None))
    if not meta.published and document is not None and document.date:
        meta.published, meta.published_date_only = parse_time(document.date)
    article = merge_hints(meta, "\n\n".join(paragraphs), hints or Hints())
    return dataclasses.replace(article, extractor=EXTRACTOR)
