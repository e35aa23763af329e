"""OPML subscription lists in and out (`ingest feeds import` and `export`).

Reading takes what readers export (Feedly, Inoreader, NetNewsWire, Miniflux, FreshRSS and the
like): every outline with an ``xmlUrl`` is a feed, at any depth; its title is ``title``, else
``text``; the titles of the outlines around it, and the paths of its OPML 2 ``category``
attribute (``/a/b`` is ``a`` and ``b``), are its tags. A feed listed in two folders is one
feed with both tags. The file is parsed without entities, DTDs or the network, and one that
declares entities (billion laughs, external entities) is refused whole: nothing is taken
from a file that is not what it says. A feed that is not http(s) (a reader's local command,
a ``file:`` or relative URL, a broken host) is one this archive cannot poll: it is passed over
with a note, and the file's other feeds are imported.

Exporters get XML wrong in ways other readers tolerate, and so do we, with a note, but only
once the strict parse has failed: a bare ``&`` in a URL (``?a=1&b=2``), HTML's named
entities (``&eacute;``, ``&nbsp;``), control characters, blank lines before the XML
declaration, and bytes that are not the UTF-8 the file declares or implies (read as
Windows-1252). The result is parsed as strictly again; anything else is still refused. An
``xmlUrl=""`` is no feed (a folder's, when it holds outlines); ``feedUrl``, and ``url`` on a
``type="rss"`` outline, are read as ``xmlUrl``. Pages a reader scrapes (FreshRSS's
``type="HTML+XPath"``) are no feeds, and included lists are not fetched: both are said.

Writing gives OPML 2.0: each feed an ``outline type="rss"`` with ``text``, ``title``,
``xmlUrl`` and ``htmlUrl`` (when known), under an outline for its first tag, with every tag
in ``category``; feeds without tags at the top. Read back, it gives the same feeds and tags.
"""

from __future__ import annotations

import codecs
import html.entities
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
# An ampersand, and the reference it starts if it starts one.
_AMPERSAND = re.compile(
    r"&(?:#([0-9]{1,8});|#[xX]([0-9a-fA-F]{1,8});|([A-Za-z][A-Za-z0-9]{0,31});)?"
)
# A complete character reference, as left in an attribute escaped twice ("&amp;amp;").
_ESCAPED = re.compile(r"&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z][A-Za-z0-9]{0,31});")
_AMPERSAND_ESCAPED = re.compile(r"&(?:amp|#0*38|#[xX]0*26);")
# C1 controls as Windows-1252's characters (“ ” – € ...): what a file declaring ISO-8859-1
# but written by a Windows tool means by them, as browsers read it too.
_C1_AS_CP1252 = {i: bytes([i]).decode("cp1252", "ignore") or None for i in range(0x80, 0xA0)}
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
# What XML 1.0 never holds: C0 controls but tab, newline and carriage return, surrogates
# (a JSON string may carry a lone one), U+FFFE and U+FFFF.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_DECLARATION = re.compile(r"""^\s*<\?xml\b[^>]*?\?>""")
_DECLARED_ENCODING = re.compile(
    rb"""^\s*<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']"""
)
# Attributes that give a feed's URL: the standard one, then what some exporters write.
_URL_ATTRIBUTES = ("xmlurl", "feedurl")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One feed of an OPML list."""

    url: str
    title: str | None = None
    site_url: str | None = None
    tags: tuple[str, ...] = field(default=())


def read_opml(data: bytes, *, source: str, notes: list[str] | None = None) -> list[Subscription]:
    """The feeds of an OPML document, each once, in the order first listed; `UsageError`
    naming ``source`` for anything that is not a usable OPML list. What was read leniently
    or passed over is said in ``notes``, when given."""
    check_size(len(data), source=source)
    if not data.strip():
        raise UsageError(f"{source}: the file is empty; nothing imported")
    said: list[str] = [] if notes is None else notes
    root = _parse(data, source, said)
    body = next((child for child in root if _name(child) == "body"), None)
    found: dict[str, Subscription] = {}
    bad: list[str] = []
    unaddressed: list[str] = []
    scraped: list[str] = []
    for outline, folders in _feed_outlines(body) if body is not None else ():
        attrs = _attributes(outline)
        given = _given_url(attrs)
        name = _clean(attrs.get("title")) or _clean(attrs.get("text")) or given or "?"
        if not given:  # a feed outline whose URL was left empty: nothing to subscribe to
            unaddressed.append(name)
            continue
        # FreshRSS's web-scraping sources (type="HTML+XPath", "JSON+DotNotation"...): their
        # xmlUrl is a page or an API, which would fail at every poll as a feed.
        kind = attrs.get("type", "").lower()
        if "xpath" in kind or "dotnotation" in kind:
            scraped.append(name)
            continue
        url = _feed_url(given)
        if url is None:
            bad.append(given)
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
        if title in {url, given}:
            title = None  # a feed without a title, written as its URL (OPML needs a text)
        site = _clean(attrs.get("htmlurl"))
        if site and _scheme(site) not in {"http", "https"}:
            site = None
        found[key] = Subscription(url, title, site, tags)
    if unaddressed:
        said.append(
            f"{source}: {len(unaddressed)} feed outline(s) with an empty URL passed over "
            f"({_listed(unaddressed)})"
        )
    if scraped:
        said.append(
            f"{source}: {len(scraped)} web page(s) a reader scraped (type HTML+XPath, "
            f"JSON+DotNotation...) passed over: no feeds ({_listed(scraped)}); `ingest feeds "
            "add` finds a site's feeds"
        )
    included = _includes(body) if body is not None else 0
    if included:
        said.append(
            f'{source}: {included} outline(s) point to another OPML list (type="include", '
            "frss:opmlUrl), not fetched: import that list itself"
        )
    if bad:
        said.append(
            f"{source}: {len(bad)} feed(s) without an http(s) URL passed over "
            f"({_listed(bad)}): not feeds this archive can poll"
        )
    if not found:
        why = "".join(f"; {note.removeprefix(f'{source}: ')}" for note in said)
        raise UsageError(f"{source}: no feeds in this OPML file (no outline has an xmlUrl){why}")
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
    etree.SubElement(head, "title").text = _xml_safe(title)
    etree.SubElement(head, "dateCreated").text = format_datetime(created, usegmt=True)
    body = etree.SubElement(root, "body")
    folders: dict[str, etree._Element] = {}
    for feed in feeds:
        if feed.tags and feed.tags[0] not in folders:
            name = _xml_safe(feed.tags[0])
            folders[feed.tags[0]] = etree.SubElement(body, "outline", text=name, title=name)
    for feed in feeds:
        parent = folders[feed.tags[0]] if feed.tags else body
        name = _xml_safe(feed.title or feed.url)
        outline = etree.SubElement(parent, "outline", type="rss", text=name, title=name)
        outline.set("xmlUrl", _xml_safe(feed.url))
        # A feed's <link> may be no web address (NewsBlur has seen "tag:" URIs): not a site.
        if feed.site_url and _scheme(feed.site_url) in {"http", "https"}:
            outline.set("htmlUrl", _xml_safe(feed.site_url))
        # A tag with a comma or a slash cannot be told apart in `category` (comma-separated
        # paths): it is kept as its folder only.
        listed = [t for t in feed.tags if "," not in t and "/" not in t]
        if listed:
            outline.set("category", _xml_safe(",".join(listed)))
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") + b"\n"


def _xml_safe(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot hold (lxml refuses them): a title
    taken from a JSON Feed, or a name in the config, may have one."""
    return _CONTROLS.sub("", value)


def _parse(data: bytes, source: str, notes: list[str]) -> etree._Element:
    try:
        tree = xmlsafe.parse(data).getroottree()
    except etree.XMLSyntaxError as exc:
        tree = _parse_repaired(data, source, notes)
        if tree is None:
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


def _parse_repaired(data: bytes, source: str, notes: list[str]) -> etree._ElementTree | None:
    """``data`` parsed after the repairs other readers make silently (see the module's
    docstring), or None when it still is not XML: other exporters' slips, not tricks, so
    nothing is resolved or fetched that the strict parse would not."""
    text, encoding_note = _decoded(data)
    if text is None:
        return None
    fixes = [encoding_note] if encoding_note else []
    text = text.lstrip("\ufeff")
    declaration = _DECLARATION.match(text)
    if declaration and text[:1].isspace():  # a PHP exporter's stray newline, most often
        fixes.append("blank space before the XML declaration")
    body = text[declaration.end() :] if declaration else text
    repaired = _AMPERSAND.sub(_reference, body)
    if repaired != body:
        fixes.append("a bare & or an HTML entity")
    cleaned = _CONTROLS.sub("", repaired)
    if cleaned != repaired:
        fixes.append("control characters")
    if not fixes:
        return None
    try:
        tree = xmlsafe.parse(cleaned.encode("utf-8")).getroottree()
    except etree.XMLSyntaxError:
        return None
    notes.append(
        f"{source}: not well-formed XML as written ({', '.join(fixes)}); read as other readers do"
    )
    return tree


def _decoded(data: bytes) -> tuple[str | None, str | None]:
    """The text of ``data`` in the encoding it declares (UTF-8 when none, a BOM's when it has
    one), else as Windows-1252 when it declares UTF-8 or nothing: the bytes of a Latin
    file written by a tool that never said so. (None, None) when it cannot be read."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec), None
            except UnicodeDecodeError:
                return None, None
    match = _DECLARED_ENCODING.match(data)
    declared = match.group(1).decode("ascii") if match else "utf-8"
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        return None, None
    try:
        return data.decode(codec), None
    except UnicodeDecodeError:
        if codec != "utf-8":
            return None, None
    return data.decode("cp1252", errors="replace"), "not UTF-8, read as Windows-1252"


def _reference(match: re.Match[str]) -> str:
    """An ampersand as XML can read it: a bare one escaped, an HTML entity as the characters
    it stands for (numeric references, so a ``&lt;`` stays text), an XML one kept, a
    reference to a character XML forbids dropped."""
    decimal, hexadecimal, name = match.groups()
    if decimal or hexadecimal:
        point = int(decimal) if decimal else int(hexadecimal, 16)
        allowed = point in (0x9, 0xA, 0xD) or 0x20 <= point <= 0xD7FF or 0xE000 <= point <= 0xFFFD
        return match.group(0) if allowed or 0x10000 <= point <= 0x10FFFF else ""
    if name is None:
        return "&amp;"
    if name in _XML_ENTITIES:
        return match.group(0)
    characters = html.entities.html5.get(f"{name};")
    if characters is None:
        return f"&amp;{name};"
    return "".join(f"&#{ord(c)};" for c in characters)


def _given_url(attrs: dict[str, str]) -> str:
    """The feed URL an outline gives, stripped ("" for none): ``xmlUrl``, else ``feedUrl``,
    else ``url`` on an outline typed as a feed (``url`` is a page's address on a link)."""
    for name in _URL_ATTRIBUTES:
        if attrs.get(name, "").strip():
            return attrs[name].strip()
    if attrs.get("type", "").strip().lower() in {"rss", "atom"}:
        return attrs.get("url", "").strip()
    return ""


def _is_feed(attrs: dict[str, str], has_children: bool) -> bool:
    """A feed outline: one with a URL, or one typed as a feed that holds no outlines (its
    URL left empty, reported); an empty ``xmlUrl`` on an outline holding others is a
    folder's (some exporters write one on every outline)."""
    if _given_url(attrs):
        return True
    typed = attrs.get("type", "").strip().lower() in {"rss", "atom"} or "xmlurl" in attrs
    return typed and not has_children


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:  # urlsplit's "Invalid IPv6 URL": http://[oops/
        return ""


def _listed(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names[:3]) + (" ..." if len(names) > 3 else "")


def _includes(body: etree._Element) -> int:
    """How many outlines include another OPML list: OPML 2's type="include", FreshRSS's
    dynamic categories (frss:opmlUrl)."""
    count = 0
    for outline in body.iter():
        if _name(outline) != "outline":
            continue
        keys = [etree.QName(k).localname.lower() for k in outline.attrib]
        kind = str(outline.get("type", "")).strip().lower()
        count += kind == "include" or "opmlurl" in keys
    return count


def _feed_outlines(
    parent: etree._Element, folders: tuple[str, ...] = ()
) -> Iterator[tuple[etree._Element, tuple[str, ...]]]:
    """Every feed outline, with the titles of the folders around it."""
    for outline in parent:
        if _name(outline) != "outline":
            continue
        attrs = _attributes(outline)
        inner = folders
        if _is_feed(attrs, any(_name(child) == "outline" for child in outline)):
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
    # "?a=1&amp;b=2" once parsed (or WordPress's &#038;): escaped twice by its exporter; no
    # feed means a parameter named "amp;b".
    url = _AMPERSAND_ESCAPED.sub("&", value.strip())
    if url.lower().startswith("feed:"):  # feed://host/path and feed:https://host/path
        rest = url[5:]
        url = rest if rest.lower().startswith(("http://", "https://")) else "http:" + rest
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # "Invalid IPv6 URL": http://[oops/feed
        return None
    if parts.scheme.lower() not in {"http", "https"} or not host:
        return None
    return url


def _categories(value: str) -> list[str]:
    """OPML 2's category: comma-separated, each a tag or a ``/a/b`` path of tags."""
    return [t for item in value.split(",") for t in (_clean(p) for p in item.split("/")) if t]


def _clean(value: str | None) -> str | None:
    """A name as shown: spaces collapsed, references an exporter escaped twice
    (``AT&amp;amp;T``, read as ``AT&amp;T``) read once more, C1 controls as Windows-1252's."""
    if not value:
        return None
    return _SPACES.sub(" ", _unescaped(value).translate(_C1_AS_CP1252)).strip() or None


def _unescaped(value: str) -> str:
    """``value`` with complete character references (``&amp;``, ``&#038;``, ``&eacute;``)
    replaced by their characters; anything else, ``AT&T`` included, kept as it is."""
    if "&" not in value:
        return value
    return _ESCAPED.sub(lambda m: html.unescape(m.group(0)), value)


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
