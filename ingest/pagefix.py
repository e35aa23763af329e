"""Fixes to a page's tree, before extraction, where it misleads trafilatura on news pages:
embedded posts in "social" wrappers, hover cards inside paragraphs, a story body split by ads,
links to other sites that are a post's content; and, for a body cut short, its sections put
back together."""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from collections.abc import Collection
from typing import Any

from ingest.markup import story_test, text_key
from ingest.notices import share_line

# Class names of a story's body container, and the blocks that carry its text.
_BODY_CLASS = re.compile(r"body|content|text|story|article|entry|post", re.I)
_TEXT_BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "table"})
_EMBEDDED_POSTS = (
    '//blockquote[contains(@class, "twitter-tweet") or contains(@class, "instagram-media")'
    ' or contains(@class, "tiktok-embed")]'
)
# Share buttons are links to other sites too, but to post the page there, not to read.
_SHARING = re.compile(
    r"shar(?:e|er|ing)\b|/intent/|[?&](?:u|url|text)=https?|/send\?|pin/create|submit\?",
    re.I,
)
_ABSOLUTE = re.compile(r"\s*(?:https?:)?//([^/:?#\s]+)", re.I)
_EMBED_WRAPPER = re.compile(r"social|embed|share|tweet|instagram", re.I)


def _lift_embedded_posts(tree: Any) -> None:
    """Quoted social posts are article content: take them out of the "social"/"embed" wrappers
    that boilerplate filters drop wholesale (share bars use the same class names)."""
    for quote in tree.xpath(_EMBEDDED_POSTS):
        quote.attrib.pop("class", None)
        text = text_key(quote.text_content())
        outer = quote
        for parent in quote.iterancestors():
            if parent.tag in ("body", "article", "main") or text_key(parent.text_content()) != text:
                break
            if _EMBED_WRAPPER.search(f"{parent.get('class', '')} {parent.get('id', '')}"):
                outer = parent
        if outer is not quote:
            outer.getparent().replace(outer, quote)


def _drop_hover_cards(tree: Any) -> None:
    """Drop pop-up cards hung on a link in the text (a name, then the person's photo, name again
    and latest stories): CSS hides them on the page, an extractor reads them as text."""
    for paragraph in tree.iter("p"):
        linked: set[str] = set()
        for element in list(paragraph.iter()):
            if element.tag == "a":
                linked.add(text_key(element.text_content()))
            elif element.tag in ("span", "div") and element.getparent() is not None:
                links = element.findall(".//a")
                if len(links) >= 2 and text_key(links[0].text_content()) in linked:
                    element.drop_tree()


def _only_filler_between(elements: list[Any], at: dict[Any, int], first: Any, second: Any) -> bool:
    """Nothing but ad slots or an "Advertisement" label between two elements, in page order."""
    start = at[first] + sum(1 for _ in first.iterdescendants())
    words = len((first.tail or "").split())
    for element in elements[start + 1 : at[second]]:
        if element.tag in _TEXT_BLOCKS and element.text_content().strip():
            return False
        if element.tag not in ("script", "style"):
            words += len((element.text or "").split())
        words += len((element.tail or "").split())
    return words <= 3


def _join_split_bodies(tree: Any) -> None:
    """Make one element again of a story body cut into same-class chunks with ads between them:
    extractors take the first body container they find and lose the rest of the story."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for element in tree.iter("div", "section", "article"):
        classes = element.get("class")
        parent = element.getparent()
        grandparent = parent.getparent() if parent is not None else None
        if not (classes and grandparent is not None and _BODY_CLASS.search(classes)):
            continue
        if element.find(".//p") is not None:
            groups.setdefault((element.tag, classes, grandparent), []).append(element)
    groups = {key: chunks for key, chunks in groups.items() if len(chunks) > 1}
    if not groups:
        return
    elements = list(tree.iter())
    at = {element: index for index, element in enumerate(elements)}
    for chunks in groups.values():
        if any(ancestor in chunks for chunk in chunks for ancestor in chunk.iterancestors()):
            continue
        if all(_only_filler_between(elements, at, a, b) for a, b in itertools.pairwise(chunks)):
            for chunk in chunks[1:]:
                chunks[0].extend(list(chunk))
                chunk.drop_tree()


# Prose: paragraphs of a sentence or more, mostly not link text.
_PROSE_WORDS = 8


def prose_paragraphs(tree: Any) -> list[tuple[Any, int]]:
    """The page's paragraphs of prose outside asides, footers and lists of stories, with their
    words: about what a whole article holds."""
    found = []
    on_story = story_test()
    for paragraph in tree.iter("p"):
        words = len(paragraph.text_content().split())
        if words < _PROSE_WORDS:
            continue
        linked = sum(len(a.text_content().split()) for a in paragraph.iter("a"))
        if 2 * linked < words and on_story(paragraph):
            found.append((paragraph, words))
    return found


def _heading_before(element: Any) -> Any:
    """The heading right before ``element`` (or before a wrapper of it), if any."""
    for node in (element, *itertools.islice(element.iterancestors(), 3)):
        previous = node.getprevious()
        while previous is not None and not previous.text_content().strip():
            previous = previous.getprevious()
        if previous is not None:
            heading = previous.tag in ("h2", "h3", "h4") and not (previous.tail or "").strip()
            return previous if heading else None
    return None


def join_sections(tree: Any, prose: list[tuple[Any, int]]) -> bool:
    """Make one element of a body laid out as sections, each in a container of the same kind
    (``<div class="article-text">`` in every block, galleries and fact boxes between): an
    extractor takes the first and leaves the rest. Only when those containers hold most of the
    page's prose (``prose``, from `prose_paragraphs`); headings between them come along.
    Returns whether the tree changed."""
    total = sum(words for _, words in prose)
    on_story = story_test()
    groups: dict[tuple[str, str], list[Any]] = {}
    for element in tree.iter("div", "section"):
        kind = (element.get("class") or "").split()
        if kind and _BODY_CLASS.search(kind[0]) and on_story(element):
            groups.setdefault((element.tag, kind[0]), []).append(element)
    for chunks in groups.values():
        # the outermost containers of the kind, in page order
        chunks = [c for c in chunks if not any(a in chunks for a in c.iterancestors())]
        if len(chunks) < 2:
            continue
        inside = set(chunks)
        held = sum(words for p, words in prose if any(a in inside for a in p.iterancestors()))
        if held < 0.6 * total:
            continue
        first = chunks[0]
        for chunk in chunks[1:]:
            heading = _heading_before(chunk)
            if heading is not None:
                heading.tail = None
                first.append(heading)
            first.extend(list(chunk))
            chunk.drop_tree()
        return True
    return False


def _host(href: str | None) -> str:
    found = _ABSOLUTE.match(href or "")
    return found[1].lower() if found else ""


@functools.lru_cache(maxsize=4096)
def _site(host: str) -> str:
    """The registered domain: ``news.example.co.uk`` and ``www.example.co.uk`` are one site."""
    import courlan  # here: only pages with absolute links need it

    return courlan.extract_domain(f"https://{host}/") or host


def outbound_links(tree: Any, url: str | None) -> list[Any]:
    """Links to other sites in the story's text and lists, and links within the page: what a
    post points at (a list of links, with or without a word each, is the post), a heading's
    permalink, a table of contents. `prepare_tree` makes them text, so that link-density
    filters, which are there to drop menus and lists of the site's own stories, keep them."""
    links = [(a, _host(a.get("href"))) for a in tree.iter("a")]
    links = [(a, _site(host)) for a, host in links if host]
    own = _site(_host(url)) if _host(url) else ""
    if not own:
        # Without the page's address, the site is the one most of its absolute links name.
        sites = Counter(site for _, site in links)
        own = sites.most_common(1)[0][0] if sites else ""
    on_story = story_test()
    found = [
        a for a, site in links if site != own and not _SHARING.search(a.get("href")) and on_story(a)
    ]
    # Within the page: a heading's permalink, a table of contents (not a post's permalink).
    inside = tree.xpath(
        '//a[starts-with(@href, "#") and string-length(@href) > 1]'
        "[ancestor::h1 or ancestor::h2 or ancestor::h3 or ancestor::h4 or ancestor::li]"
    )
    found += [a for a in inside if on_story(a)]
    return [a for a in found if not share_line(a.text_content().strip())]


def prepare_tree(tree: Any, outbound: Collection[Any] = ()) -> None:
    """Fix in place what misleads trafilatura on news pages (after `page_metadata` read it);
    ``outbound`` are the links to make text (`outbound_links`)."""
    for link in outbound:
        link.drop_tag()
    _lift_embedded_posts(tree)
    _drop_hover_cards(tree)
    _join_split_bodies(tree)
