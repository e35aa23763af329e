"""OPML subscription lists in and out (`ingest feeds import` and `export`).

Reading takes what readers export (Feedly, Inoreader, NetNewsWire, Miniflux, FreshRSS and the
like): every outline with an ``xmlUrl`` is a feed, at any depth; its title is ``title``, else
``text``; the titles of the outlines around it, and the paths of its OPML 2 ``category``
attribute (``/a/b`` is ``a`` and ``b``), are its tags. A feed listed in two folders is one
feed with both tags. The file is parsed without entities, DTDs or the network, and one that
declares entities (billion laughs, external entities) is refused whole, as is one with a
feed that is not http(s): nothing is taken from a file that is not what it says.

Writing gives OPML 2.0: each feed an ``outline type="rss"`` with ``text``, ``title``,
``xmlUrl`` and ``htmlUrl`` (when known), under an outline for its first tag, with every tag
in ``category``; feeds without tags at the top. Read back, it gives the same feeds and tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

from lxml import etree

from ingest import xmlsafe
from ingest.entryparts import url_key
from ingest.errors import UsageError

# Real lists are well under 1 MB (a thousand feeds is about 250 KB).
MAX_OPML_BYTES = 10_000_000
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One feed of an OPML list."""

    url: str
    title: str | None = None
    site_url: str | None = None
    tags: tuple[str, ...] = field(default=())


def read_opml(data: bytes, *, source: str) -> list[Subscription]:
    """The feeds of an OPML document, each once, in the order first listed; `UsageError`
    naming ``source`` for anything that is not a usable OPML list."""
    check_size(len(data), source=source)
    root = _parse(data, source)
    body = next((child for child in root if _name(child) == "body"), None)
    found: dict[str, Subscription] = {}
    bad: list[str] = []
    for outline, folders in _feed_outlines(body) if body is not None else ():
        attrs = _attributes(outline)
        url = _feed_url(attrs.get("xmlurl", ""))
        if url is None:
            bad.append(attrs.get("xmlurl", "").strip() or "(empty)")
            continue
        tags = _unique([*folders, *_categories(attrs.get("category", ""))])
        key = url_key(url)
        known = found.get(key)
        if known is not None:  # listed again, in another folder: one feed with both tags
            found[key] = Subscription(
                known.url, known.title, known.site_url, _unique([*known.tags, *tags])
            )
            continue
        title = _clean(attrs.get("title")) or _clean(attrs.get("text"))
        if title in {url, attrs.get("xmlurl")}:
            title = None  # a feed without a title, written as its URL (OPML needs a text)
        site = _clean(attrs.get("htmlurl"))
        if site and urlsplit(site).scheme not in {"http", "https"}:
            site = None
        found[key] = Subscription(url, title, site, tags)
    if bad:
        shown = ", ".join(repr(u) for u in bad[:3]) + (" ..." if len(bad) > 3 else "")
        raise UsageError(
            f"{source}: {len(bad)} feed(s) without an http(s) URL ({shown}); nothing imported "
            "(remove those outlines, or fix their xmlUrl)"
        )
    if not found:
        raise UsageError(f"{source}: no feeds in this OPML file (no outline has an xmlUrl)")
    return list(found.values())


def check_size(size: int, *, source: str) -> None:
    """`UsageError` for a file of ``size`` bytes, too large to be a list of feeds."""
    if size > MAX_OPML_BYTES:
        raise UsageError(
            f"{source}: {size:,} bytes is too large for an OPML list (at most "
            f"{MAX_OPML_BYTES:,}); nothing imported"
        )


def write_opml(feeds: Sequence[Subscription], *, title: str, created: datetime) -> bytes:
    """OPML 2.0 for ``feeds``: each under an outline for its first tag, every tag in its
    ``category``."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(created, usegmt=True)
    body = etree.SubElement(root, "body")
    folders: dict[str, etree._Element] = {}
    for feed in feeds:
        if feed.tags and feed.tags[0] not in folders:
            folders[feed.tags[0]] = etree.SubElement(
                body, "outline", text=feed.tags[0], title=feed.tags[0]
            )
    for feed in feeds:
        parent = folders[feed.tags[0]] if feed.tags else body
        name = feed.title or feed.url
        outline = etree.SubElement(parent, "outline", type="rss", text=name, title=name)
        outline.set("xmlUrl", feed.url)
        if feed.site_url:
            outline.set("htmlUrl", feed.site_url)
        # A tag with a comma or a slash cannot be told apart in `category` (comma-separated
        # paths): it is kept as its folder only.
        listed = [t for t in feed.tags if "," not in t and "/" not in t]
        if listed:
            outline.set("category", ",".join(listed))
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") + b"\n"


def _parse(data: bytes, source: str) -> etree._Element:
    try:
        tree = xmlsafe.parse(data).getroottree()
    except etree.XMLSyntaxError as exc:
        raise UsageError(f"{source}: not an OPML file: not well-formed XML ({exc})") from None
    info = tree.docinfo
    dtd = info.internalDTD
    entities = dtd is not None and any(True for _ in dtd.iterentities())
    if entities or info.system_url or info.public_id:
        raise UsageError(
            f"{source}: the file declares XML entities or an external DTD, which OPML never "
            "needs (an entity expansion or external entity trick?); nothing imported"
        )
    root = tree.getroot()
    if _name(root) != "opml":
        raise UsageError(f"{source}: not an OPML file (its root element is <{_name(root)}>)")
    return root


def _feed_outlines(
    parent: etree._Element, folders: tuple[str, ...] = ()
) -> Iterator[tuple[etree._Element, tuple[str, ...]]]:
    """Every outline with an xmlUrl, with the titles of the folders around it."""
    for outline in parent:
        if _name(outline) != "outline":
            continue
        attrs = _attributes(outline)
        inner = folders
        if "xmlurl" in attrs:
            yield outline, folders
        else:
            title = _clean(attrs.get("title")) or _clean(attrs.get("text"))
            inner = (*folders, title) if title else folders
        yield from _feed_outlines(outline, inner)


def _name(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname.lower() if isinstance(tag, str) else ""


def _attributes(element: etree._Element) -> dict[str, str]:
    """Attributes without a namespace (FreshRSS adds its own ``frss:`` ones), by lower-case
    name: exporters spell ``xmlUrl`` and ``htmlUrl`` variously."""
    return {str(k).lower(): str(v) for k, v in element.attrib.items() if not str(k).startswith("{")}


def _feed_url(value: str) -> str | None:
    url = value.strip()
    if url.lower().startswith("feed:"):  # feed://host/path and feed:https://host/path
        rest = url[5:]
        url = rest if rest.lower().startswith(("http://", "https://")) else "http:" + rest
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    return url


def _categories(value: str) -> list[str]:
    """OPML 2's category: comma-separated, each a tag or a ``/a/b`` path of tags."""
    return [t for item in value.split(",") for t in (_clean(p) for p in item.split("/")) if t]


def _clean(value: str | None) -> str | None:
    return _SPACES.sub(" ", value).strip() or None if value else None


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
