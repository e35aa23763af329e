"""Who wrote a page: byline lines ("By Jane Doe and John Roe, Reuters", "/ Source: AP",
"Jane Doe | Staff Writer"), the byline elements a page shows, wire credit lines, and the
author names they give, cleaned (agencies in full, no roles, timestamps or links).
"""

from __future__ import annotations

import re
from typing import Any

from ingest.markup import classes, clean_text, element_text, on_story, text_key

# Wire-service credits written in short form; the archive stores the full name.
AGENCIES = {
    "ap": "The Associated Press",
    "associated press": "The Associated Press",
    "the associated press": "The Associated Press",
    "afp": "Agence France-Presse",
    "agence france-presse": "Agence France-Presse",
    "reuters": "Reuters",
    "upi": "United Press International",
    "dpa": "dpa",
}
_AGENCY_NAMES = frozenset(AGENCIES.values())
_ROLE_WORDS = re.compile(
    r"\b(staff|writer|reporter|correspondent|editor|contributor|columnist|updated|published"
    r"|photograph\w*|for the|special to|agencies|wires|wire services|news services)\b",
    re.I,
)
_BYLINE = re.compile(
    r"^(?:/\s*)?(?:source|by|written by|story by|words by|von|por|par)\s*[:\-–—]?\s+(?P<who>.+)$",
    re.I,
)
# WordPress themes: "Posted on 20 February 2025 by Gwen Pryce".
_POSTED_BY = re.compile(r"^(?:posted|published)\b.{0,60}?\bby\s+(?P<who>.+)$", re.I)
# A byline runs on into its timestamp: "By Jane Doe Updated 5:00 PM EST, March 3, 2025",
# "by Jeff Foust Monday, November 18, 2019", "Carlos Nadalim 27/09/2018".
_BYLINE_END = re.compile(
    r"\s*[|·•–—-]?\s*(?:\b(?:last updated|updated|first published|published|posted"
    r"|aktualisiert|veröffentlicht|actualizado|publicado|mis à jour|publié|atualizado"
    r"|(?:mon|tues|wednes|thurs|fri|satur|sun)day)\b"
    r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d"
    r"|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}\b).*$",
    re.I,
)
# Wire copy credits its reporters at the end: "Reporting by Jane Doe in Oslo and John Roe;
# Editing by Ann Poe" (editors and "additional reporting" are not the authors).
_CREDITS = re.compile(r"^\(?\s*(?:reporting|writing|text|words) by\s+", re.I)
# "Jane Doe | Staff Writer": a name, then the role.
_NAME_ROLE = re.compile(r"^(?P<who>[^|,]+?)\s*[|,–—]\s*(?P<role>[^|,]+)$")
# Lower-case words that belong inside names: "Ana de la Cruz", "Jan van der Berg".
_NAME_PARTICLES = frozenset(
    "de da do dos das del della di du la le van von der den ter ten zu y e bin al el".split()
)
# Class names of the elements that show a byline (in the languages of the set).
_BYLINE_CLASS = re.compile(
    r"byline|(?<![a-z])(?:author|autor|auteur|signature|firma|verfasser)(?:e?s)?(?![a-z])", re.I
)
# What a byline element may say besides names: its label.
_LABELS = frozenset(
    {"author", "authors", "autor", "autores", "auteur", "auteurs", "byline", "by", "source"}
)


def _looks_like_name(name: str) -> bool:
    """Up to five words, capitalised but for particles ("María de la Cruz"), no digits; any
    script without case ("佐藤美咲") passes."""
    words = name.split()
    if name in _AGENCY_NAMES:
        return True  # "dpa" styles itself in lower case
    if not 1 <= len(words) <= 5 or any(ch.isdigit() for ch in name):
        return False
    if name.endswith(("!", "?", ":")) or words[0][:1].islower():
        return False
    return all(not w[:1].islower() or w in _NAME_PARTICLES for w in words)


def _without_timestamp(text: str) -> str:
    """ "Jane Doe Updated 5:00 PM EST" -> "Jane Doe"; a tail without digits is no timestamp."""
    end = _BYLINE_END.search(text)
    return text[: end.start()] if end and re.search(r"\d", end.group()) else text


def split_authors(byline: str | None) -> list[str]:
    """A byline -> clean author names.

    "/ Source: The Associated Press" -> ["The Associated Press"];
    "By Jane Doe and John Roe, Reuters" -> ["Jane Doe", "John Roe", "Reuters"]; "AP" ->
    ["The Associated Press"]; "By Jane Doe Updated 5:00 PM" -> ["Jane Doe"].
    """
    text = clean_text(byline)
    if not text:
        return []
    posted = _POSTED_BY.match(text)
    if posted:
        text = posted.group("who")
    text = _without_timestamp(text)
    match = _BYLINE.match(text)
    if match:
        text = match.group("who")
    names: list[str] = []
    for part in re.split(r"\s*(?:,|;|\||&|\band\b|\bund\b|\by\b|\be\b|\bet\b)\s*", text):
        name = part.strip(" .:-–—/")
        name = re.sub(r"^(?:by|source)\s*:?\s+", "", name, flags=re.I)
        if not name or _ROLE_WORDS.search(name) or any(ch.isdigit() for ch in name):
            continue
        if "@" in name or name.startswith(("http://", "https://")):
            continue
        name = AGENCIES.get(name.lower(), name)
        if name not in names:
            names.append(name)
    return names


def byline_authors(paragraph: str) -> list[str] | None:
    """Authors if ``paragraph`` is a byline line ("By ...", "/ Source: ...", "AP",
    "Jane Doe | Staff Writer"), else None."""
    text = _without_timestamp(paragraph.strip()) or paragraph.strip()
    if len(text) > 120 or len(text.split()) > 14 or text.endswith((".", "?", "!", '"', "”")):
        return None
    if text.lower().strip(" /") in AGENCIES:
        return [AGENCIES[text.lower().strip(" /")]]
    name_role = _NAME_ROLE.match(text)
    if _BYLINE.match(text) or _POSTED_BY.match(text):
        names = split_authors(text)
    elif (
        name_role and _ROLE_WORDS.search(name_role["role"]) and len(name_role["role"].split()) <= 4
    ):
        names = split_authors(name_role["who"])
    else:
        return None
    # Every part must look like a name, not a sentence starting with "By".
    if names and all(_looks_like_name(n) for n in names):
        return names
    return None


def _credit_authors(scope: Any) -> list[str]:
    """Reporters named in a wire credit line ("(Reporting by ...; Editing by ...)")."""
    names: list[str] = []
    for para in scope.iter("p"):
        text = element_text(para)
        if len(text) > 200 or not _CREDITS.match(text):
            continue
        for segment in re.split(r"[;)]", text):
            match = _CREDITS.match(segment.strip())
            if match:
                who = re.sub(
                    r"\s+in\s+[A-Z][\w.-]*(?:\s+[A-Z][\w.-]*)*", "", segment[match.end() :]
                )
                names.extend(n for n in split_authors(who) if n not in names)
    return names if all(_looks_like_name(n) for n in names) else []


def _page_byline(scope: Any) -> list[str]:
    """Authors from the first byline element the page shows (``itemprop=author``, or a class
    such as "byline", "author", "signature") that reads as a byline or a list of names."""
    for element in scope.iter():
        if not isinstance(element.tag, str) or element.tag in ("meta", "link", "script"):
            continue
        marked = element.get("itemprop") == "author" or element.get("rel") == "author"
        if not (marked or _BYLINE_CLASS.search(classes(element))) or not on_story(element):
            continue
        # A microdata author names itself in its "name" property (other properties: its URL...)
        inner = [n for n in element.iter() if n.get("itemprop") == "name"] if marked else []
        text = element_text(inner[0] if inner else element)
        if not text or len(text) > 120:
            continue
        # "By ..." and its kin, or names alone: not a line with dates or tags in it
        names = byline_authors(text) or (
            split_authors(text) if not any(ch.isdigit() for ch in text) else []
        )
        if names and all(_looks_like_name(n) and text_key(n) not in _LABELS for n in names):
            return names
    return []


def page_authors(
    declared: list[str], tags: dict[str, str], site_name: str | None, tree: Any, scope: Any
) -> list[str]:
    """The page's authors: those its JSON-LD names (``declared``), else its meta ``tags``; when
    neither names anyone but the site, the byline the story (``scope``) or the page shows, or
    the reporters of a wire credit line."""
    authors = declared
    if not authors:
        for key in ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author"):
            value = tags.get(key)
            if value and not value.startswith(("http://", "https://")):
                authors = split_authors(value)
                break
    site_key = text_key(site_name or "")
    # An "author" that is just the site's name says less than a byline naming people.
    if not authors or [text_key(a) for a in authors] == [site_key]:
        authors = _page_byline(scope) or _page_byline(tree) or _credit_authors(scope) or authors
    return authors
