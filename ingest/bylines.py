"""Who wrote a page: byline lines ("By Jane Doe and John Roe, Reuters", "/ Source: AP",
"Jane Doe | Staff Writer"), the byline elements a page shows, wire credit lines, and the
author names they give, cleaned (agencies in full, no roles, timestamps or links); then the
merge of what every source names (JSON-LD, meta tags, bylines, the feed) into one list.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from ingest.markup import classes, clean_text, element_text, on_story, text_key

# News agencies, by the forms bylines write them in (as `text_key`s) -> the name the archive
# stores, so that `--author Reuters` finds the wire's stories whichever source credited it.
# Two-letter codes that are common words or initials elsewhere ("TT", "CP") are left out.
_AGENCY_FORMS = {
    "The Associated Press": ("ap", "associated press", "the associated press"),
    "Agence France-Presse": ("afp", "agence france presse"),
    "Reuters": ("reuters", "thomson reuters"),
    "United Press International": ("upi", "united press international"),
    "dpa": ("dpa", "deutsche presse agentur"),
    "PA Media": ("pa", "pa media", "press association", "the press association"),
    "ANP": ("anp", "algemeen nederlands persbureau"),
    "EFE": ("efe", "agencia efe"),
    "Europa Press": ("europa press",),
    "Bloomberg": ("bloomberg", "bloomberg news"),
    "ANSA": ("ansa",),
    "Lusa": ("lusa", "agência lusa", "agencia lusa"),
    "Belga": ("belga",),
    "APA": ("apa", "austria presse agentur"),
    "Keystone-SDA": ("sda", "keystone sda"),
    "epd": ("epd",),
    "KNA": ("kna",),
    "Kyodo News": ("kyodo", "kyodo news", "共同通信", "共同通信社"),
    "Xinhua": ("xinhua",),
    "Yonhap": ("yonhap",),
    "The Canadian Press": ("canadian press", "the canadian press"),
    "Australian Associated Press": ("aap", "australian associated press"),
    "Jiji Press": ("jiji", "jiji press", "時事通信", "時事通信社"),
}
AGENCIES = {form: name for name, forms in _AGENCY_FORMS.items() for form in forms}
_AGENCY_NAMES = frozenset(_AGENCY_FORMS)
# "Reuters Staff", "PA Reporter", "AFP Wire": the agency itself.
_AGENCY_SUFFIXES = frozenset(
    "staff reporter reporters writer writers correspondent correspondents wire wires service"
    " services desk".split()
)
_ROLE_WORDS = re.compile(
    r"\b(staff|writer|reporter|correspondent|editor|contributor|columnist|updated|published"
    r"|photograph\w*|for the|special to|agencies|wires|wire services|news services)\b",
    re.I,
)
_BYLINE = re.compile(
    r"^(?:/\s*)?(?:source|by|written by|story by|words by|von|por|par|door)\s*[:\-–—]?\s+"
    r"(?P<who>.+)$",
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


def agency_name(name: str) -> str | None:
    """The stored name of the news agency ``name`` is a form of ("AP", "Reuters Staff",
    "Agence France Presse"), else None."""
    words = text_key(name).split()
    while len(words) > 1 and words[-1] in _AGENCY_SUFFIXES:
        words.pop()
    key = " ".join(words)
    return AGENCIES.get(key) or AGENCIES.get(key.removeprefix("the "))


def _agencies_only(text: str) -> list[str] | None:
    """ "dpa/AFP", "AP, Reuters" -> their agencies; None when any part is not one."""
    parts = [p for p in re.split(r"\s*(?:[/,&]|\band\b|\bund\b)\s*", text) if p.strip()]
    found = [agency_name(p) for p in parts]
    if not found or None in found:
        return None
    return [a for i, a in enumerate(found) if a and a not in found[:i]]


# "Jane Doe with AP", "Claire Dubois avec AFP", "con información de EFE", "mit Material von
# dpa": an agency credited after the names.
_WITH = re.compile(r"\s*[,;]?\s*\b(?:with|avec|mit|con|com)\s+(?P<credit>[^,;|()]+)$", re.I)
_FROM = re.compile(r"^(?:.*\s)?(?:from|of|by|de|d'|du|des|von|da|do|dos)\s+", re.I)


def _credited_agencies(match: re.Match[str]) -> str:
    agencies = _agencies_only(_FROM.sub("", match.group("credit")))
    return f", {', '.join(agencies)}" if agencies else match.group()


def _parenthesis(match: re.Match[str]) -> str:
    """ "(dpa/AFP)" in a byline credits agencies; other asides ("(Berlin)", "(she/her)") go."""
    agencies = _agencies_only(match.group(1))
    return f", {', '.join(agencies)}," if agencies else " "


# Links and handles in an author field: "https://www.facebook.com/jane", "www.x.example/jd",
# "facebook.com/jane", "@jane".
_LINK = re.compile(r"(?:https?://|www\.)\S*|\S*\w\.[a-z]{2,}/\S*", re.I)
_NOT_A_NAME = re.compile(r"@|\w\.(?:com|org|net|[a-z]{2})\b")


def split_authors(byline: str | None) -> list[str]:
    """A byline -> clean author names.

    "/ Source: The Associated Press" -> ["The Associated Press"];
    "By Jane Doe and John Roe, Reuters" -> ["Jane Doe", "John Roe", "Reuters"]; "AP" ->
    ["The Associated Press"]; "By Jane Doe Updated 5:00 PM" -> ["Jane Doe"];
    "Von Jane Doe (dpa/AFP)" -> ["Jane Doe", "dpa", "Agence France-Presse"].
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
    text = re.sub(r"\(([^()]*)\)", _parenthesis, _LINK.sub(" ", text))
    text = _WITH.sub(_credited_agencies, text)
    names: list[str] = []
    for part in re.split(r"\s*(?:,|;|\||&|/|\band\b|\bund\b|\by\b|\be\b|\bet\b)\s*", text):
        name = part.strip(" .:-–—")
        name = re.sub(r"^(?:by|source)\s*:?\s+", "", name, flags=re.I)
        if not name or any(ch.isdigit() for ch in name) or _NOT_A_NAME.search(name):
            continue
        agency = agency_name(name)
        if agency is None and _ROLE_WORDS.search(name):
            continue
        name = agency or name
        if name not in names:
            names.append(name)
    return names


def byline_authors(paragraph: str) -> list[str] | None:
    """Authors if ``paragraph`` is a byline line ("By ...", "/ Source: ...", "AP",
    "Jane Doe | Staff Writer"), else None."""
    text = _without_timestamp(paragraph.strip()) or paragraph.strip()
    if len(text) > 120 or len(text.split()) > 14 or text.endswith((".", "?", "!", '"', "”")):
        return None
    agencies = _agencies_only(text.strip(" /()"))
    if agencies:
        return agencies
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


# Meta tags that name a page's authors, most trusted first.
AUTHOR_TAGS = ("author", "article:author", "dc.creator", "byl", "parsely-author", "sailthru.author")


def page_bylines(
    declared: list[str], tag_values: dict[str, list[str]], tree: Any, scope: Any
) -> list[list[str]]:
    """What each of the page's sources names, most trusted first: its JSON-LD (``declared``),
    each author meta tag (``tag_values``: every value of the tag, in page order), the first
    byline element of the story (``scope``) or else of the page, a wire credit line."""
    sources = [declared]
    for key in AUTHOR_TAGS:
        values = tag_values.get(key, [])
        sources.append([n for value in values for n in split_authors(value)])
    sources.append(_page_byline(scope) or (_page_byline(tree) if scope is not tree else []))
    sources.append(_credit_authors(scope))
    return [names for names in sources if names]


# --- merging what the sources name --------------------------------------------------------------

# Names of a desk or an account rather than of people ("Web Desk", "Redaktion", "admin").
_DESK = re.compile(
    r"\b(?:desk|team|newsroom|admin|administrator|editorial|redaktion|redacci[oó]n|r[ée]daction"
    r"|reda[cç][aã]o|redazione|redactie)\b",
    re.I,
)
_FOLD = str.maketrans({"ß": "ss", "ø": "o", "đ": "d", "ł": "l", "æ": "ae", "œ": "oe", "ı": "i"})


def site_key(name: str) -> str:
    """``name`` as compared with the site's names: "The Metro Ledger", "MetroLedger" ->
    "metroledger"."""
    return "".join(text_key(name).removeprefix("the ").split())


def author_key(name: str) -> str:
    """What spellings of one person share: case and accents go, "oe" is "ö" ("Köhler",
    "Koehler", "KOHLER"), initials go ("Jane A. Doe")."""
    folded = unicodedata.normalize("NFKD", name.casefold().translate(_FOLD))
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    words = re.findall(r"\w+", plain)
    words = [re.sub(r"(?<=[aou])e", "", w) for w in words if len(w) > 1 or not w.isascii()]
    return " ".join(words) or text_key(name)


def _spelling(name: str) -> tuple[int, bool, int]:
    """Which spelling of a name to keep: with its accents, in sentence case, in full."""
    return (
        sum(not ch.isascii() for ch in name),
        name not in (name.upper(), name.lower()),
        len(name),
    )


def merge_authors(sources: Iterable[Sequence[str]], sites: Collection[str] = ()) -> list[str]:
    """One author list from what several sources name (``sources``, most trusted first;
    ``sites``: the site's names as `site_key`s).

    People first, in the order of the fullest byline among the sources that agree; then the
    agencies any agreeing source credits. The most trusted source naming people is the
    reference; another source agrees when it names one of the same people (then the people
    it adds are kept, if they look like names) or names no people at all (an agency alone).
    A source naming only other people disagrees and is left out, agencies and all. The site's
    own name and desks ("Web Desk") are authors only when no source names anyone else.
    """
    parsed: list[tuple[list[str], list[str], list[str]]] = []
    for names in sources:
        people, agencies, desks = [], [], []
        for name in names:
            agency = agency_name(name)
            if agency:
                agencies.append(agency)
            elif site_key(name) in sites or _DESK.search(name):
                desks.append(name)
            else:
                people.append(name)
        parsed.append((people, agencies, desks))

    agreeing: list[int] = []
    known: set[str] = set()
    grown = True
    while grown:
        grown = False
        for index, (people, _, _) in enumerate(parsed):
            keys = {author_key(n) for n in people}
            if keys and index not in agreeing and (not agreeing or keys & known):
                agreeing.append(index)
                known |= keys
                grown = True
    # The fullest byline sets the order (the most trusted of equals); others add at the end.
    fullest = sorted(agreeing, key=lambda i: (-len({author_key(n) for n in parsed[i][0]}), i))
    spellings: dict[str, list[str]] = {}
    for index in fullest:
        for name in parsed[index][0]:
            key = author_key(name)
            if key in spellings or index == agreeing[0] or _looks_like_name(name):
                spellings.setdefault(key, []).append(name)
    merged = [max(names, key=_spelling) for names in spellings.values()]
    for index, (people, agencies, _) in enumerate(parsed):
        if index in agreeing or not people:
            merged.extend(a for a in agencies if a not in merged)
    # Nobody else: the first source's desk or site name, rather than nothing.
    return merged or next((names for _, _, names in parsed if names), [])
