"""A post on a page of several: the part of the page a link's ``#fragment`` names.

Microblogs and daily pages hold many posts, each under an anchor: ``id=`` on the post's own
element or on its heading, or an old ``<a name=>``; their feeds link each entry to
``page#anchor``. The post is the anchored element when it holds text of its own; otherwise it
runs from the anchor to the next anchor of its kind (a heading: the next heading of its rank or
above), a rule, or the end of the posts' container. The page's title and date are the page's,
not the post's: the feed entry's metadata comes first here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import lxml.html

from ingest.cleanup import clean_paragraphs, date_line, word_count
from ingest.entryparts import fragment_text, language_tag
from ingest.metadata import page_metadata
from ingest.records import ExtractedArticle, Hints

# Fewer words than this under the anchor is no post (an empty anchor, a timestamp).
POST_WORDS = 3
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_INLINE = frozenset({"a", "span", "b", "i", "em", "strong", "small", "time", "abbr", "sup"})
# Where a post ends at the latest, whatever its anchors: a rule, or the page's chrome.
_BREAKS = "self::hr or self::footer or self::nav or self::aside or self::form"


def _anchor(tree: Any, fragment: str) -> Any | None:
    for name in dict.fromkeys((fragment, unquote(fragment))):
        try:
            found = tree.xpath("//*[@id=$name] | //a[@name=$name]", name=name)
        except ValueError:  # control characters (a "%00"): no attribute can hold them
            continue
        if found:
            return found[0]
    return None


def _kind(anchor: Any) -> str:
    """An XPath test for the anchors of the other posts: elements of the anchor's kind (its
    tag is the variable ``$tag``)."""
    tag = anchor.tag
    if tag in _HEADINGS:
        return " or ".join(f"self::{h}" for h in _HEADINGS[: _HEADINGS.index(tag) + 1])
    if tag == "a":
        return "self::a[@name or @id]"
    return "(name() = $tag and @id)"


def _html(element: Any) -> str:
    return lxml.html.tostring(element, encoding="unicode", with_tail=False)


def _common(first: Any, second: Any) -> Any:
    ancestors = list(first.iterancestors())  # held: lxml's proxies stay the same objects
    return next(a for a in second.iterancestors() if any(a is b for b in ancestors))


def _cut(container: Any, start: Any, end: Any | None, *, keep_start: bool) -> None:
    """Leave in ``container`` only what lies from ``start`` up to ``end`` (excluded)."""
    if end is not None:
        node = end
        while node is not container:
            parent = node.getparent()
            for later in list(node.itersiblings()):
                parent.remove(later)  # its tail goes with it
            if node is end:
                parent.remove(node)
            else:
                node.tail = None
            node = parent
    node = start
    while node is not container:
        parent = node.getparent()
        for earlier in list(node.itersiblings(preceding=True)):
            parent.remove(earlier)
        parent.text = None
        node = parent
    if not keep_start:
        start.drop_tree()  # its tail (text after it) stays


def _clean(text: str | None, title: str | None) -> str | None:
    """A post's text without its title and a trailing timestamp or permalink ("9:12 AM", "#")."""
    paragraphs, _ = clean_paragraphs((text or "").split("\n\n"), title=title, description=None)
    while paragraphs and (date_line(paragraphs[-1]) or not word_count(paragraphs[-1])):
        paragraphs.pop()
    cleaned = "\n\n".join(paragraphs)
    return cleaned if word_count(cleaned) >= POST_WORDS else None


def post_text(tree: Any, fragment: str, title: str | None = None) -> str | None:
    """The text of the post ``fragment`` names on the page ``tree`` (modified), or None when
    the page has no such anchor or little text under it; ``title`` is the post's, dropped
    where the page shows it above the text."""
    anchor = _anchor(tree, fragment)
    if anchor is None:
        return None
    parent = anchor.getparent()
    if anchor.tag in _INLINE and parent is not None and parent.tag in _HEADINGS:
        anchor = parent  # <h3><a name="p2"></a>Title</h3>: the heading is the post's start
    if anchor.tag not in _HEADINGS and anchor.tag not in _INLINE:
        own = _clean(fragment_text(_html(anchor)), title)
        if own is not None:
            return own
    kind, tag = _kind(anchor), anchor.tag
    end = next(iter(anchor.xpath(f"following::*[{kind} or {_BREAKS}][1]", tag=tag)), None)
    other = end if end is not None and end.xpath(f"boolean({kind})", tag=tag) else None
    if other is None:
        other = next(iter(anchor.xpath(f"preceding::*[{kind}][1]", tag=tag)), None)
    container = _common(anchor, other) if other is not None else anchor.getparent()
    if container is None:
        return None
    if end is not None and not any(a is container for a in end.iterancestors()):
        end = None  # outside the posts' container: the container's end comes first
    _cut(container, anchor, end, keep_start=anchor.tag not in _HEADINGS)
    return _clean(fragment_text(_html(container)), title)


def post_article(tree: Any, url: str | None, fragment: str, hints: Hints) -> ExtractedArticle:
    """The post ``fragment`` names on a page of several: its text from the page when the page
    holds it, else the feed entry's own content; the entry's title and dates before the page's
    (a day page's title is not a post's)."""
    meta = page_metadata(tree, url)
    text = post_text(tree, fragment, hints.title)
    return ExtractedArticle(
        text=text or hints.content or "",
        title=hints.title,
        authors=hints.authors or tuple(meta.authors),
        published=hints.published or meta.published,
        updated=hints.updated,
        language=meta.language or language_tag(hints.language),
        site_name=meta.site_name,
        summary=hints.summary,
        canonical_url=f"{meta.canonical_url}#{fragment}" if meta.canonical_url else None,
        from_page=text is not None,
    )
