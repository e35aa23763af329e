"""When a page says it was published and updated: ISO and loose timestamps, the zone
abbreviations news pages print, dates printed in the languages of the set ("4 de março de 2025
às 08:30", "2025年2月14日"), ``<time>`` elements and date lines.

Sources are tried in order of trust: JSON-LD, meta tags, microdata, then what the page shows. A
later source wins only where it says more about the same day: a timestamp with its zone over a
bare date or a zoneless time.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser

from ingest.entryparts import empty_date
from ingest.markup import classes, clean_text, element_text, itemprops, on_story

_NY, _CHI, _DEN, _LA = (
    ZoneInfo(name)
    for name in ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
)
# Zone abbreviations news pages print; dateutil knows none of them by itself. "ET" and its kin
# name a zone, not an offset: the date decides between standard and summer time.
_TZINFOS: dict[str, int | tzinfo] = {
    **{
        name: int(offset * 3600)
        for name, offset in {
            "UTC": 0,
            "GMT": 0,
            "Z": 0,
            "EST": -5,
            "EDT": -4,
            "CST": -6,
            "CDT": -5,
            "MST": -7,
            "MDT": -6,
            "PST": -8,
            "PDT": -7,
            "BST": 1,
            "CET": 1,
            "CEST": 2,
            "MEZ": 1,
            "MESZ": 2,
            "EET": 2,
            "EEST": 3,
            "IST": 5.5,
            "JST": 9,
            "KST": 9,
            "AEST": 10,
            "AEDT": 11,
        }.items()
    },
    "ET": _NY,
    "CT": _CHI,
    "MT": _DEN,
    "PT": _LA,
}
# How much a date says: a day, a wall-clock time without a zone, or an instant.
DATE_ONLY, LOCAL_TIME, INSTANT = 0, 1, 2
_CLOCK = re.compile(r"\d{1,2}[:h.]\d{2}|\d\s*[ap]\.?m\b", re.I)
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_CJK_DATE = re.compile(
    r"(?P<y>\d{4})年\s*(?P<m>\d{1,2})月\s*(?P<d>\d{1,2})日(?:\D{0,6}(?P<H>\d{1,2})[:時](?P<M>\d{2}))?"
)
# Month names of the languages news pages come in, for dateutil (which reads English only).
_MONTHS = {
    english: re.compile(rf"\b(?:{names})\b\.?", re.I)
    for english, names in {
        "January": "januar|jänner|janvier|enero|janeiro|gennaio",
        "February": "februar|feber|février|fevrier|febrero|fevereiro|febbraio",
        "March": "märz|maerz|mars|marzo|março|marco",
        "April": "avril|abril|aprile",
        "May": "mai|mayo|maio|maggio",
        "June": "juni|juin|junio|junho|giugno",
        "July": "juli|juillet|julio|julho|luglio",
        "August": "août|aout|agosto",
        "September": "septembre|septiembre|setiembre|setembro|settembre",
        "October": "oktober|octobre|octubre|outubro|ottobre",
        "November": "novembre|noviembre|novembro",
        "December": "dezember|décembre|decembre|diciembre|dezembro|dicembre",
    }.items()
}
_WEEKDAYS = (
    r"\b(?:montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|lundi|mardi|mercredi"
    r"|jeudi|vendredi|samedi|dimanche|lunes|martes|miércoles|jueves|viernes|sábado|domingo"
    r"|segunda|terça|quarta|quinta|sexta)(?:-feira)?\b,?"
)
_DATE_LABEL = re.compile(
    r"^(?:first published|published|posted|publicado(?: em| el)?|veröffentlicht(?: am)?"
    r"|publié(?: le)?|on)\s*:?\s*",
    re.I,
)
# Class names of the elements that show a date (in the languages of the set), or an update.
_DATE_CLASS = re.compile(r"date|time|stamp|publish|publica|posted|fecha|datum|\bdata\b", re.I)
_UPDATED_CLASS = re.compile(r"updat|modif", re.I)


def _parse_local(value: Any) -> tuple[datetime | None, int]:
    """(the moment as written, naive if it has no zone; how precise it is)."""
    text = clean_text(value)
    if not text:
        return None, DATE_ONLY
    try:
        parsed = dateparser.isoparse(text)
    except (ValueError, OverflowError):
        try:
            with warnings.catch_warnings():
                # an unknown zone name leaves the time zoneless, which is what we want
                warnings.simplefilter("ignore", dateparser.UnknownTimezoneWarning)
                parsed = dateparser.parse(text, tzinfos=_TZINFOS)
        except (ValueError, OverflowError, TypeError, dateparser.ParserError):
            return None, DATE_ONLY
    if parsed is None:
        return None, DATE_ONLY
    if len(text) <= 10 and parsed.hour == parsed.minute == 0:
        return parsed, DATE_ONLY
    return parsed, LOCAL_TIME if parsed.tzinfo is None else INSTANT


def _utc(moment: datetime) -> datetime | None:
    if empty_date(moment):
        return None
    # A time without a zone is taken as UTC: the page gives nothing better.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_time(value: Any) -> tuple[datetime | None, bool]:
    """(aware UTC datetime, date_only) from an ISO or loose date string."""
    moment, precision = _parse_local(value)
    utc = _utc(moment) if moment is not None else None
    return (utc, precision == DATE_ONLY) if utc else (None, False)


def _best_time(candidates: Iterable[tuple[datetime | None, int]]) -> tuple[datetime | None, int]:
    """The first date found, unless a later source is more precise about the same day."""
    best: tuple[datetime | None, int] = (None, DATE_ONLY)
    for moment, precision in candidates:
        if moment is None or _utc(moment) is None:
            continue
        if best[0] is None or (precision > best[1] and moment.date() == best[0].date()):
            best = (moment, precision)
        if best[1] == INSTANT:
            break
    return best


def _visible_date(text: str, language: str | None) -> tuple[datetime | None, int]:
    """A date line as printed: "Published March 4, 2025, 9:30 a.m. ET", "14.02.2025, 08:15",
    "2025年2月14日 7:00". Strict: no fuzzy parsing, and year, month and day must all be printed
    (dateutil would fill what is missing from today's date)."""
    text = _DATE_LABEL.sub("", text).strip()
    if not _YEAR.search(text) or len(text) > 80:
        return None, DATE_ONLY
    cjk = _CJK_DATE.search(text)
    if cjk:
        year, month, day, hour, minute = (int(cjk[g] or 0) for g in ("y", "m", "d", "H", "M"))
        try:
            return datetime(year, month, day, hour, minute), LOCAL_TIME if cjk["H"] else DATE_ONLY
        except ValueError:
            return None, DATE_ONLY
    numeric = re.search(r"\b\d{1,2}([./])\d{1,2}\1\d{4}\b", text)
    # 04.03.2025 is day-first everywhere; 04/03/2025 is month-first only in American English.
    dayfirst = bool(numeric) and (numeric[1] == "." or language not in (None, "en"))
    cleaned = re.sub(r"\b(\d{1,2})h(\d{2})\b", r"\1:\2", text)  # 08h30
    for english, names in _MONTHS.items():
        cleaned = names.sub(english, cleaned)
    # the words around a date's parts: "4 de março de 2025 às 08:30", "Dienstag, 4. März"
    cleaned = re.sub(
        rf"{_WEEKDAYS}|\b(?:de|del|le|the|of)\b|\s+(?:at|um|à|às|a las)\s+|\s*\|\s*|\s+Uhr\b",
        " ",
        cleaned,
        flags=re.I,
    )
    readings = []
    for default in (datetime(2000, 1, 1), datetime(2001, 2, 2)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", dateparser.UnknownTimezoneWarning)
                readings.append(
                    dateparser.parse(cleaned, default=default, tzinfos=_TZINFOS, dayfirst=dayfirst)
                )
        except (ValueError, OverflowError, TypeError, dateparser.ParserError):
            return None, DATE_ONLY
    first, second = readings
    if first.date() != second.date():
        return None, DATE_ONLY  # a part of the date was not printed
    if not _CLOCK.search(text):
        return first.replace(hour=0, minute=0, second=0, tzinfo=None), DATE_ONLY
    return first, LOCAL_TIME if first.tzinfo is None else INSTANT


def _page_times(scope: Any) -> Iterator[tuple[datetime | None, int]]:
    """Publication times the page shows: ``<time datetime>`` (the one marked as published
    first), never one marked as the update time."""
    times = [
        t
        for t in scope.iter("time")
        if t.get("datetime")
        and on_story(t)
        and not _UPDATED_CLASS.search(classes(t) + classes(t.getparent()))
    ]
    marked = [t for t in times if t.get("pubdate") is not None or "publish" in classes(t)]
    for element in marked + times:
        yield _parse_local(element.get("datetime"))


def _printed_dates(scope: Any, language: str | None) -> Iterator[tuple[datetime | None, int]]:
    """Dates printed in date and timestamp elements (not update times)."""
    for element in scope.iter():
        if not isinstance(element.tag, str) or not _DATE_CLASS.search(classes(element)):
            continue
        text = element_text(element)
        if _UPDATED_CLASS.search(classes(element)) or _UPDATED_CLASS.match(text):
            continue
        if text and on_story(element):
            yield _visible_date(text, language)


def published_time(
    article: dict[str, Any], tags: dict[str, str], tree: Any, scope: Any, language: str | None
) -> tuple[datetime | None, bool]:
    """(aware UTC datetime, date_only) of the page's publication, from its JSON-LD ``article``,
    its meta ``tags``, its microdata, then the ``<time>`` and date lines the story (``scope``)
    shows. date_only also for a time without its zone: a feed's timestamp says more."""

    def candidates() -> Iterator[tuple[datetime | None, int]]:
        yield _parse_local(article.get("datePublished"))
        for key in (
            "article:published_time",
            "og:published_time",
            "datepublished",
            "pubdate",
            "publish-date",
            "publishdate",
            "publish_date",
            "parsely-pub-date",
            "sailthru.date",
            "dc.date.issued",
            "dcterms.issued",
            "dc.date",
            "dcterms.date",
            "dcterms.created",
            "date",
        ):
            yield _parse_local(tags.get(key))
        for element in itemprops(tree, "datePublished"):
            value = element.get("datetime") or element.get("content")
            if value:
                yield _parse_local(value)
            else:
                yield _visible_date(element_text(element), language)
        yield from _page_times(scope)
        yield from _printed_dates(scope, language)

    moment, precision = _best_time(candidates())
    if moment is None:
        return None, False
    return _utc(moment), precision < INSTANT


def updated_time(article: dict[str, Any], tags: dict[str, str]) -> datetime | None:
    """When the page says it was last modified: its JSON-LD ``article``, then its meta ``tags``."""
    for value in (
        article.get("dateModified"),
        tags.get("article:modified_time"),
        tags.get("og:updated_time"),
        tags.get("datemodified"),
        tags.get("dcterms.modified"),
        tags.get("last-modified"),
    ):
        updated, _ = parse_time(value)
        if updated:
            return updated
    return None
