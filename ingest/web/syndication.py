"""A search as a feed to subscribe to: Atom (RFC 4287) and JSON Feed 1.1, from the hit
records `ingest.web.listing` returns.

Links are written as URIs (`_link`): an archived URL may hold a space or non-ASCII
characters, which readers' URL parsers and validators' ``uri`` format refuse.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.etree import ElementTree as ET

from w3lib.url import safe_url_string

from ingest.records import utcnow

ATOM = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 cannot carry at all: dropped, or the feed would not parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _title(query: str) -> str:
    return f"ingest: {query}" if query else "ingest: newest articles"


def _link(url: str | None) -> str | None:
    """An http(s) URL as a URI (host in IDNA, a space or a non-ASCII character
    percent-encoded, what is already encoded left so); None for any other scheme."""
    if not url or not url.startswith(("http://", "https://")):
        return None
    try:
        return safe_url_string(url)
    except ValueError:  # a host IDNA cannot encode
        return None


def _updated(hits: list[dict[str, Any]]) -> str:
    dates = [h["published"] for h in hits if h["published"]]
    return max(dates) if dates else utcnow().isoformat().replace("+00:00", "Z")


def atom(hits: list[dict[str, Any]], query: str, self_url: str) -> bytes:
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")

    def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = _NOT_XML.sub("", text)
        return element

    add(feed, "id", self_url)
    add(feed, "title", _title(query))
    add(feed, "updated", _updated(hits))
    add(feed, "link", rel="self", href=self_url)
    add(add(feed, "author"), "name", "ingest")
    for hit in hits:
        entry = add(feed, "entry")
        add(entry, "id", f"{self_url.split('/search', 1)[0]}/articles/{hit['id']}")
        add(entry, "title", hit["title"] or "(untitled)")
        add(entry, "updated", hit["published"] or _updated([]))
        if link := _link(hit["url"]):
            add(entry, "link", rel="alternate", href=link)
        for name in hit["authors"]:
            add(add(entry, "author"), "name", name)
        add(entry, "summary", hit["snippet"].replace("**", ""))
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")


def json_feed(hits: list[dict[str, Any]], query: str, self_url: str) -> bytes:
    """JSON Feed 1.1. An item's title is left out when the article has none (JSON Feed's
    titles are optional: a reader shows the text instead of an invented "(untitled)");
    ``author`` repeats the first of ``authors`` for readers of 1.0, as the spec allows."""
    path, _, query_string = self_url.partition("?")
    base = path.rsplit("/", 1)[0]  # where /search.feed.json is served: the site's root
    items = []
    for hit in hits:
        authors = [{"name": name} for name in hit["authors"] if name]
        item = {
            "id": str(hit["id"]),
            "url": _link(hit["url"]),
            "title": hit["title"] or None,
            "content_text": hit["snippet"].replace("**", ""),
            "date_published": hit["published"],
            "authors": authors,
            "author": authors[0] if authors else None,
            "language": hit["language"],
            "external_url": f"{base}/articles/{hit['id']}",
        }
        items.append({k: v for k, v in item.items() if v not in (None, [])})
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": _title(query),
        # The same search as a page: what the feed describes ("strongly recommended").
        "home_page_url": f"{base}/search" + (f"?{query_string}" if query_string else ""),
        "feed_url": self_url,
        "items": items,
    }
    return json.dumps(feed, ensure_ascii=False).encode()
