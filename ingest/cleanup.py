"""The body text's clean-up: what trafilatura lets through on news sites.

Browser banners, the headline, the lead or a teaser repeated, bylines (they become authors),
date and reading-time lines, share bars, cookie notices, paywall prompts and ad labels
(`ingest.notices`), "Related:" pointers, runs and trailing lists of links (unless they are the
post), newsletter prompts, contact, copyright and taxonomy lines. Generic rules only: nothing
here names a site.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

from ingest.bylines import byline_authors
from ingest.markup import WS, text_key
from ingest.notices import drop_notices

_BANNER = re.compile(
    r"(is not supported|isn't supported|unsupported browser|upgrade your browser|outdated browser"
    r"|for an optimal experience|enable javascript|javascript is (?:disabled|required)"
    r"|turn off your ad ?blocker|we use cookies)",
    re.I,
)
_DATE_LINE = re.compile(
    r"^(?:published|updated|posted|last updated|last modified|first published)\b.{0,80}\d", re.I
)
_TRAILER = re.compile(
    r"^(?:©|\(c\)\s|copyright\s*(?:©|\(c\)|\d{4}|all rights)|all rights reserved"
    r"|read more\b|read next\b|related:|see also:|more from\b|recommended\b"
    r"|(?:sign up|subscribe)\b.{0,120}\b(?:newsletter|updates|inbox)"
    r"|follow (?:us|@)|share this\b|click here\b"
    r"|※.{0,40}(?:会員|登録|購読))",
    re.I,
)
_READING_TIME = re.compile(
    r"^(?:(?:estimated )?read(?:ing)? time|tempo de leitura|tiempo de lectura|temps de lecture"
    r"|lesezeit|tempo di lettura)\b.{0,30}$"
    r"|^\d+\s*min(?:ute)?s?\.?\s*(?:read|de leitura|de lectura)$",
    re.I,
)
# A date line that starts with the time or the date: "5:45 AM PST 11/19/2019 by Jane Doe".
_CLOCK_LINE = re.compile(
    r"^(?:\d{1,2}:\d{2}\s*(?:[ap]\.?m\.?)?|\d{1,2}/\d{1,2}/\d{2,4}"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2},? \d{4})\b",
    re.I,
)
# Pointers to other pages inside or after the body: "Related: ...", "Read more: ...", "More:".
_SIGNPOST = re.compile(
    r"^[\[(]?(?:related(?: posts?| articles?| stories| story| content| reading| coverage)?"
    r"|read (?:more|also|next)|also read|see (?:also|more)|more|more on this|must read"
    r"|recommended(?: reading)?|you (?:may|might) also like|don['’]?t miss)\s*(?::|\.\.\.|…|$)",
    re.I,
)
_PROMO = re.compile(
    r"\b(?:sign up|subscribe)\b.{0,120}\b(?:newsletters?|inbox)\b"
    r"|\b(?:newsletters?|inbox)\b.{0,60}\b(?:sign up|subscribe)\b",
    re.I,
)
_FOLLOW = re.compile(
    r"^follow\b.{0,80}\b(?:on|at|via)\b.{0,80}"
    r"(?:twitter|facebook|instagram|youtube|linkedin|https?://|@)",
    re.I,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_TAXONOMY = re.compile(r"^(?:sources?|filed under|tags?|comments?)\s*(?::|$)", re.I)
_COPYRIGHT_LINE = re.compile(r"^copyright\b.{0,60}\b(?:19|20)\d{2}\b", re.I)
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*$")
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_CLOCK = re.compile(r"\b\d{1,2}[:h]\d{2}\b")


def word_count(text: str | None) -> int:
    return len(re.findall(r"\w+", text or ""))


def date_line(para: str) -> bool:
    """A date line in any language: "Updated March 4, 2025", "segunda-feira, 22 de janeiro de
    2018 às 0:13", "5:45 AM PST 11/19/2019 by Jane Doe"."""
    if len(para) >= 100:
        return False
    if _DATE_LINE.match(para):
        return True
    if _SENTENCE_END.search(para):
        return False
    return _CLOCK_LINE.match(para) is not None or (
        len(para) < 80 and bool(_YEAR.search(para) and _CLOCK.search(para))
    )


def _leading_chrome(para: str, headlines: Collection[str]) -> bool:
    """Banners, the headline, date lines, reading times and newsletter prompts."""
    return (
        (len(para) < 200 and _BANNER.search(para) is not None)
        or text_key(para) in headlines
        or date_line(para)
        or _READING_TIME.match(para) is not None
        or (len(para) < 300 and _PROMO.search(para) is not None)
    )


def _trailing_chrome(para: str) -> bool:
    """Copyright, newsletter, "follow us", contact, tag and "read more" lines."""
    if len(para) >= 300:
        return False
    return any(
        (
            _TRAILER.match(para),
            _BANNER.search(para),
            _PROMO.search(para),
            _FOLLOW.match(para),
            _EMAIL.search(para),
            _TAXONOMY.match(para),
            _SIGNPOST.match(para),
            len(para) < 100 and _COPYRIGHT_LINE.match(para) and not para.endswith("."),
        )
    )


def _dedupe_lead(paras: list[str], description: str | None) -> list[str]:
    """The lead repeated: a summary ("dek") printed above the body, then the body's first
    paragraph saying the same, or a teaser of the first paragraphs. Keep one."""
    keys = [text_key(para) for para in paras]
    teaser = _teaser_size(keys)
    paras, keys = paras[teaser:], keys[teaser:]
    seen: set[str] = set()
    unique: list[str] = []
    # A paragraph that comes back after the lead (a refrain, a repeated notice, a pattern the
    # page is made of) is the page's text, not a lead printed twice.
    recurring = set(keys[4:])
    for index, (para, key) in enumerate(zip(paras, keys, strict=True)):
        if index < 4 and len(key) >= 40 and key in seen and key not in recurring:
            continue
        seen.add(key)
        unique.append(para)
    description_key = text_key(description or "")
    if (
        len(unique) > 1
        and description_key
        and text_key(unique[0]) == description_key
        and text_key(unique[1]).startswith(description_key[: max(40, len(description_key) // 2)])
    ):
        unique.pop(0)
    return unique


def _teaser_size(keys: list[str]) -> int:
    """How many first paragraphs are a teaser printed above the body that opens with them
    again (a paywall's preview, a summary of the first paragraphs): each comes twice, in the
    same order, the teaser's last one perhaps cut short."""
    counts = Counter(keys)
    size = 0
    while (
        size < len(keys)
        and len(keys[size]) >= 40
        and counts[keys[size]] == 2
        and keys[size] not in keys[:size]
    ):
        size += 1
    if (
        size < len(keys)
        and len(keys[size]) >= 40
        and any(k.startswith(keys[size]) and k != keys[size] for k in keys[size + 1 :])
    ):
        size += 1  # a teaser's last paragraph, cut short
    for start in range(size, len(keys) - size + 1) if size else ():
        if all(keys[start + i].startswith(keys[i]) for i in range(size)):
            return size
    return 0


def _link_share(para: str, links: Mapping[str, float]) -> float:
    return links.get(text_key(para.removeprefix("- ")), 0.0)


def _drop_link_runs(paras: list[str], links: Mapping[str, float]) -> list[str]:
    """Drop runs of three or more paragraphs that are nothing but a link: lists of other
    stories. One or two such lines are often the story's own (a source, a product)."""
    kept: list[str] = []
    run: list[str] = []
    for para in [*paras, ""]:
        if para and _link_share(para, links) >= 0.9:
            run.append(para)
            continue
        if len(run) < 3:
            kept.extend(run)
        run = []
        kept.append(para)
    return kept[:-1]


def _trailing_link_list(paras: list[str], links: Mapping[str, float]) -> int:
    """How many of the last paragraphs are a list, mostly of links ("More stories: - ...")."""
    count = 0
    while count < len(paras) and paras[-1 - count].startswith("- "):
        count += 1
    linked = sum(_link_share(para, links) >= 0.4 for para in paras[len(paras) - count :])
    return count if count >= 3 and linked >= 0.6 * count else 0


def clean_paragraphs(
    paragraphs: list[str],
    *,
    title: str | None,
    description: str | None,
    headlines: Sequence[str] = (),
    links: Mapping[str, float] | None = None,
    outbound: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """Drop page chrome from the body; returns (paragraphs, byline authors).

    ``headlines`` are the other forms of the title the page shows (``<h1>``, ``<title>``);
    ``links`` maps the `text_key` of link texts and list items to the share of their
    text inside links, to tell lists of links from article text; ``outbound`` holds the
    `text_key` of links to other sites.
    """
    paras = drop_notices([p for p in (WS.sub(" ", p).strip() for p in paragraphs) if p])
    links = links or {}
    heads = {k for k in (text_key(t) for t in (title or "", *headlines)) if k}
    authors: list[str] = []
    # Leading chrome: banners, the headline, bylines and date lines before the first real
    # paragraph.
    while paras:
        names = byline_authors(paras[0])
        if names:
            authors.extend(n for n in names if n not in authors)
        elif not _leading_chrome(paras[0], heads):
            break
        paras.pop(0)
    paras = _dedupe_lead(paras, description)
    paras = [p for p in paras if not (len(p) <= 200 and _SIGNPOST.match(p))]
    # Lists of links are dropped as other stories, unless they are most of the text and lead
    # to other sites: then they are what the page is about (a post of links, a reading list).
    unlinked = _drop_link_runs(paras, links)
    while unlinked and _trailing_chrome(unlinked[-1]):
        unlinked.pop()
    if count := _trailing_link_list(unlinked, links):
        del unlinked[-count:]
    dropped = Counter(paras) - Counter(unlinked)
    away = sum(
        len(p.split()) * n for p, n in dropped.items() if text_key(p.removeprefix("- ")) in outbound
    )
    if _words(unlinked) * 2 >= _words(paras) or away * 2 < _words(list(dropped.elements())):
        paras = unlinked
    # Nothing but links to the site's own pages (a menu, a page without an article).
    if all(
        _link_share(p, links) >= 0.9 and text_key(p.removeprefix("- ")) not in outbound
        for p in paras
    ):
        return [], authors
    while paras and _trailing_chrome(paras[-1]):
        paras.pop()
    return paras, authors


def _words(paras: list[str]) -> int:
    return sum(len(p.split()) for p in paras)
