"""What `ingest feeds add`, `remove`, `import` and `export` do: the feeds of the config file
in use, edited in place (`ingest.configedit`), then the archive's feeds table brought in step
with it, as a daemon's reload does.

A feed is the same feed when its URL's `url_key` is (``HTTP://Example.org/rss?utm_source=x``
is ``http://example.org/rss``): one already in the config is never added again. Names are
unique: a name taken from a feed's title that is already in use gets " (2)", " (3)", ...;
one given with ``--name`` that is taken is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.config import ConfigError, FeedSettings, Settings
from ingest.configedit import ConfigFile
from ingest.entryparts import url_key
from ingest.errors import StoreError, UsageError
from ingest.opml import Subscription

if TYPE_CHECKING:
    from ingest.store import Store


@dataclass(frozen=True, slots=True)
class NewFeed:
    """A feed to add: ``name`` as the user gave it (kept as is) or a title (made unique)."""

    url: str
    name: str | None = None
    named: bool = False  # ``name`` was given with --name: a clash is an error, not renamed
    interval: str | None = None
    tags: tuple[str, ...] = ()
    type: str = "feed"  # or "sitemap"
    since: str | None = None  # sitemaps: no URL dated before this is fetched


@dataclass(slots=True)
class Changes:
    added: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (URL, already there as)


def config_in_use(settings: Settings) -> Path:
    """The config file `ingest` reads, which these commands edit; an error saying where it
    was looked for, and how to make one, when there is none."""
    if settings.not_found is not None:
        raise ConfigError(
            f"no config file to edit: {settings.no_config()}. Create it first (an empty file "
            f"will do: mkdir -p {settings.not_found.parent} && touch {settings.not_found}), "
            "then run this again"
        )
    return Path(settings.source)


def feed_label(table: dict[str, Any]) -> str:
    return str(table.get("name") or table["url"])


def find(config: ConfigFile, ref: str) -> int | None:
    """The index of the config's feed named ``ref``, or whose URL is ``ref``."""
    feeds = config.feeds
    for index, table in enumerate(feeds):
        if table.get("name") == ref:
            return index
    if ref.lower().startswith(("http://", "https://")):
        key = url_key(ref)
        for index, table in enumerate(feeds):
            if url_key(table["url"]) == key:
                return index
    return None


def add_feeds(config: ConfigFile, feeds: Sequence[NewFeed]) -> Changes:
    """Add ``feeds`` to the config file (those already in it are skipped and reported)."""
    changes = Changes()
    known = {url_key(t["url"]): feed_label(t) for t in config.feeds}
    names = {t["name"] for t in config.feeds if t.get("name")}
    for feed in feeds:
        key = url_key(feed.url)
        if key in known:
            changes.skipped.append((feed.url, known[key]))
            continue
        table: dict[str, Any] = {"url": feed.url}
        name = feed.name
        if name and name in names:
            if feed.named:
                raise UsageError(
                    f"{config.path}: a feed is already named {name!r}; choose another --name"
                )
            name = _unused(name, names)
        if name:
            table["name"] = name
            names.add(name)
        if feed.type != "feed":
            table["type"] = feed.type
        if feed.since:
            table["since"] = feed.since
        if feed.interval:
            table["interval"] = feed.interval
        if feed.tags:
            table["tags"] = list(dict.fromkeys(feed.tags))
        known[key] = feed_label(table)
        changes.added.append(table)
    if changes.added:
        config.write(config.with_feeds_added(changes.added))
    return changes


def _unused(name: str, names: set[str]) -> str:
    return next(f"{name} ({n})" for n in range(2, len(names) + 3) if f"{name} ({n})" not in names)


def remove_feed(config: ConfigFile, ref: str) -> dict[str, Any]:
    """Remove the feed named ``ref`` (or whose URL it is) from the config file."""
    index = find(config, ref)
    if index is None:
        listed = ", ".join(repr(feed_label(t)) for t in config.feeds[:8]) or "none"
        raise UsageError(
            f"{config.path}: no feed named {ref!r} or with that URL (its feeds: {listed})"
        )
    table = config.feeds[index]
    config.write(config.with_feed_removed(index))
    return table


def from_opml(found: Iterable[Subscription], tags: Sequence[str] = ()) -> list[NewFeed]:
    """The feeds of an OPML list to add, each with ``tags`` as well as its own."""
    return [
        NewFeed(url=s.url, name=s.title, tags=tuple(dict.fromkeys([*s.tags, *tags]))) for s in found
    ]


def to_opml(
    feeds: Sequence[FeedSettings], known: dict[str, tuple[str | None, str | None]]
) -> list[Subscription]:
    """The config's feeds as OPML subscriptions: titled by their name, else by their title in
    the archive; ``known`` (feed URL -> (title, site URL), from the archive) gives htmlUrl."""
    subscriptions = []
    for feed in feeds:
        title, site_url = known.get(feed.url, (None, None))
        subscriptions.append(Subscription(feed.url, feed.name or title, site_url, tuple(feed.tags)))
    return subscriptions


def to_toml(config: ConfigFile) -> str:
    """The config's ``[[feeds]]`` tables, to paste into another config."""
    import tomlkit

    document = tomlkit.document()
    if config.feeds:
        document["feeds"] = tomlkit.aot()
        for table in config.feeds:
            document["feeds"].append(tomlkit.item(table))
    return document.as_string()


@contextmanager
def archive_if_any(settings: Settings) -> Iterator[Store | None]:
    """The archive, when there is one that opens (its hosts' turns shared), else None."""
    from ingest.store import Store

    try:
        store = Store.open(settings.database.url, create=False)
    except StoreError:
        yield None
        return
    try:
        yield store
    finally:
        store.close()


def sync_archive(settings: Settings) -> str | None:
    """Bring the archive's feeds in step with the config (new feeds due, removed ones no
    longer polled, names and tags), as a daemon's reload does; None when done, else why not
    (no archive yet, unreachable, out of date): the next `ingest fetch` or daemon does it."""
    from ingest.store import Store

    try:
        store = Store.open(settings.database.url, create=False)
    except StoreError as exc:
        return str(exc)
    try:
        store.sync_feeds(settings.feeds, exclusive=True, rules=settings.schedule)
    except StoreError as exc:
        return str(exc)
    finally:
        store.close()
    return None


def archived_feeds(settings: Settings) -> dict[str, tuple[str | None, str | None]]:
    """Each feed's title and site URL as the archive knows them from its last poll ({}
    without an archive)."""
    from ingest.store import Store

    try:
        store = Store.open(settings.database.url, read_only=True)
    except StoreError:
        return {}
    try:
        return {f.url: (f.title, f.site_url) for f in store.feeds()}
    except StoreError:
        return {}
    finally:
        store.close()
