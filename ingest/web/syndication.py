"""A search as a feed to subscribe to: Atom (RFC 4287) and JSON Feed 1.1, from the hit
records `ingest.web.listing` returns."""

from __future__ import annotations

import json
import re
from typing import Any
from xml.etree import ElementTree as ET

from ingest.records import utcnow

ATOM = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 cannot carry at all: dropped, or the feed would not parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _title(query: str) -> str:
    return f"ingest: {query}" if query else "ingest: newest articles"


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
        if hit["url"] and hit["url"].startswith(("http://", "https://")):
            add(entry, "link", rel="alternate", href=hit["url"])
        for name in hit["authors"]:
            add(add(entry, "author"), "name", name)
        add(entry, "summary", hit["snippet"].replace("**", ""))
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")


def json_feed(hits: list[dict[str, Any]], query: str, self_url: str) -> bytes:
    base = self_url.split("/search", 1)[0]
    items = [
        {
            "id": str(hit["id"]),
            "url": hit["url"] if (hit["url"] or "").startswith(("http://", "https://")) else None,
            "title": hit["title"] or "(untitled)",
            "content_text": hit["snippet"].replace("**", ""),
            "date_published": hit["published"],
            "authors": [{"name": name} for name in hit["authors"]],
            "language": hit["language"],
            "external_url": f"{base}/articles/{hit['id']}",
        }
        for hit in hits
    ]
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": _title(query),
        "feed_url": self_url,
        "items": [{k: v for k, v in item.items() if v not in (None, [])} for item in items],
    }
    return json.dumps(feed, ensure_ascii=False).encode()
