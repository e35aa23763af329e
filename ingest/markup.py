"""The page as the metadata readers see it: clean text and its comparison key, an element's
text and classes, microdata properties, and the part of the page that is the story.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

WS = re.compile(r"[ \t\u00a0\u2009\u202f]+")
_OFF_STORY = re.compile(r"comment|related|recommend|teaser|promo|bio\b|more-", re.I)
_OFF_STORY_TAGS = frozenset({"aside", "footer", "nav", "figure", "figcaption"})


def clean_text(value: Any) -> str | None:
    """``value`` as one line of NFC text, or None when it is no text or blank."""
    if not isinstance(value, str):
        return None
    text = WS.sub(" ", unicodedata.normalize("NFC", value)).strip()
    return text or None


def text_key(text: str) -> str:
    """The words of ``text``, case-folded: what two texts are compared by."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def element_text(element: Any) -> str:
    """The text inside ``element``, whitespace collapsed."""
    return " ".join(" ".join(element.itertext()).split())


def classes(element: Any) -> str:
    """``element``'s class and id, which say what it holds."""
    return f"{element.get('class', '')} {element.get('id', '')}"


def on_story(element: Any) -> bool:
    """Not in an aside, footer, figure, comment or list of other stories."""
    return not any(
        node.tag in _OFF_STORY_TAGS or _OFF_STORY.search(classes(node))
        for node in (element, *element.iterancestors())
    )


def story_test() -> Callable[[Any], bool]:
    """`on_story` for many elements of one page: each ancestor is looked at once."""
    known: dict[Any, bool] = {}

    def test(element: Any) -> bool:
        path = []
        verdict = True
        for node in (element, *element.iterancestors()):
            if node in known:
                verdict = known[node]
                break
            path.append(node)
            if node.tag in _OFF_STORY_TAGS or _OFF_STORY.search(classes(node)):
                verdict = False
                break
        for node in path:
            known[node] = verdict
        return verdict

    return test


def story_scope(tree: Any) -> Any:
    """The ``<article>`` that holds the headline, else the whole page."""
    h1 = next(tree.iter("h1"), None)
    article = next(h1.iterancestors("article"), None) if h1 is not None else None
    return tree if article is None else article


def itemprops(tree: Any, name: str) -> Iterator[Any]:
    """Microdata elements with ``itemprop=name`` (meta tags excepted: `ingest.metadata`
    reads them with the other meta tags)."""
    for element in tree.xpath(f'//*[@itemprop="{name}"]'):
        if element.tag != "meta":
            yield element
