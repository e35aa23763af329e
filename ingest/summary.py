"""What a run counts and reports as it goes: its failures, the summary `ingest fetch` prints
(`RunSummary`), and the progress the CLI draws. The daemon counts in its metrics instead
(`NoTally`), so that nothing piles up in memory over months.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

from ingest.records import utcnow


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 feed``, ``2 feeds``; ``many`` for irregular plurals (``entries``)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


@dataclass(frozen=True, slots=True)
class Failure:
    url: str
    reason: str
    message: str
    kind: str  # "feed" or "page"


class Tally(Protocol):
    """Where an `Ingestor` counts what it does (a run's summary, or nothing)."""

    def add(self, counter: str, n: int = 1) -> None: ...

    def failed(self, failure: Failure) -> None: ...


class NoTally:
    """For the daemon: its counts live in the metrics, and nothing may pile up in memory."""

    def add(self, counter: str, n: int = 1) -> None:
        pass

    def failed(self, failure: Failure) -> None:
        pass


@dataclass
class RoundTally:
    """What the daemon did since its last "polled ..." log line: a `Tally` of counters only
    (each failure has a log line of its own, and nothing piles up)."""

    feeds: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    entries_new: int = 0
    articles_new: int = 0
    articles_failed: int = 0
    articles_duplicate: int = 0
    versions_new: int = 0
    articles_removed: int = 0

    def add(self, counter: str, n: int = 1) -> None:
        if counter in self.__dataclass_fields__:  # a run's other counters are not said here
            setattr(self, counter, getattr(self, counter) + n)

    def failed(self, failure: Failure) -> None:
        pass

    @property
    def counted(self) -> bool:
        """Whether there is anything to say at all."""
        return any(getattr(self, f.name) for f in fields(self))

    @property
    def news(self) -> bool:
        """Whether anything happened beyond polls that found nothing new."""
        return bool(
            self.feeds_failed
            or self.entries_new
            or self.articles_new
            or self.articles_failed
            or self.articles_duplicate
            or self.versions_new
            or self.articles_removed
        )

    def line(self) -> tuple[str, dict[str, int]]:
        """The log line's message and its keys, e.g. "polled 3 feeds (2 not modified,
        0 failed): 4 new entries, 4 articles stored, 1 page failed"."""
        done = [f"{plural(self.articles_new, 'article')} stored"]
        if self.articles_failed:
            done.append(f"{plural(self.articles_failed, 'page')} failed")
        if self.articles_duplicate:
            done.append(f"{plural(self.articles_duplicate, 'duplicate')}")
        if self.versions_new:
            done.append(f"{plural(self.versions_new, 'new version')}")
        if self.articles_removed:
            done.append(f"{plural(self.articles_removed, 'page')} gone")
        if self.feeds:
            head = (
                f"polled {plural(self.feeds, 'feed')} ({self.feeds_not_modified} not modified, "
                f"{self.feeds_failed} failed): "
                f"{plural(self.entries_new, 'new entry', 'new entries')}, "
            )
        else:
            head = "pages retried or resumed: "
        keys = {
            "feeds": self.feeds,
            "feeds_not_modified": self.feeds_not_modified,
            "feeds_failed": self.feeds_failed,
            "entries_new": self.entries_new,
            "articles_stored": self.articles_new,
            "pages_failed": self.articles_failed,
            "duplicates": self.articles_duplicate,
            "versions_new": self.versions_new,
            "articles_removed": self.articles_removed,
        }
        return head + ", ".join(done), keys


@dataclass
class RunSummary:
    """What one refresh did; `to_dict` is the ``--format json`` output."""

    feeds: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    entries_seen: int = 0
    entries_new: int = 0
    articles_new: int = 0
    articles_failed: int = 0
    articles_duplicate: int = 0
    pages_retried: int = 0
    pages_rechecked: int = 0  # archived pages looked at again for changes
    versions_new: int = 0  # of which changed: a new version kept
    articles_removed: int = 0  # of which gone (404 or 410)
    failures: list[Failure] = field(default_factory=list)
    started_at: datetime = field(default_factory=utcnow)
    seconds: float = 0.0
    extract_cpu_seconds: float = 0.0  # the extractor's own CPU in the workers, all pages

    @property
    def completed(self) -> bool:
        """False when there were feeds to poll and not one of them could be."""
        return self.feeds == 0 or self.feeds_failed < self.feeds

    def add(self, counter: str, n: int = 1) -> None:
        setattr(self, counter, getattr(self, counter) + n)

    def failed(self, failure: Failure) -> None:
        self.failures.append(failure)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["seconds"] = round(self.seconds, 3)
        data["extract_cpu_seconds"] = round(self.extract_cpu_seconds, 3)
        return data


class Progress(Protocol):
    """What the pipeline reports as it goes (the CLI draws a progress bar from it)."""

    def add(self, pages: int) -> None: ...

    def done(self, pages: int = 1) -> None: ...


class NoProgress:
    def add(self, pages: int) -> None:
        pass

    def done(self, pages: int = 1) -> None:
        pass
