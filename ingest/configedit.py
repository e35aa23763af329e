"""The config file edited in place: ``[[feeds]]`` tables added or removed, every other byte as
it was (comments, order, blank lines, line endings).

The edit is made on the text, a table at a time: tomlkit renders the new tables (quoting,
escapes), and the lines of a removed table go with the comment lines right above it. A
document model would move comments: tomlkit keeps a comment written above a table with the
table before it. The edited text is then read back and must give exactly the data intended
(the same file with those feeds added or removed) and valid settings; only then does it
replace the file, through a temporary file renamed over it (same mode, same owner when we
may), so a reader or a daemon reloading it never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from ingest.config import ConfigError, file_settings, toml_data

_FEEDS_HEADER = re.compile(r"""[ \t]*\[\[[ \t]*(feeds|"feeds"|'feeds')[ \t]*\]\][ \t]*(#.*)?""")
_ANY_HEADER = re.compile(r"""[ \t]*\[\[?[ \t]*[\w"'. -]+?[ \t]*\]\]?[ \t]*(#.*)?""")
# The order keys are written in, as the default config writes its feeds.
KEY_ORDER = ("name", "url", "interval", "tags")


@dataclass(frozen=True, slots=True)
class _Span:
    start: int  # the first line of the comment block right above the header, or the header
    end: int  # after the table's last line of content


class ConfigFile:
    """A config file's text and data, and its ``[[feeds]]`` tables."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.raw = path.read_bytes()
            self.text = self.raw.decode("utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text: {exc.reason}") from exc
        self.data = toml_data(self.text, str(path))
        self.newline = "\r\n" if "\r\n" in self.text else "\n"
        self.lines = self.text.splitlines(keepends=True)
        self._spans = _feed_spans(self.lines)
        feeds = self.data.get("feeds", [])
        if len(self._spans) != len(feeds):
            raise ConfigError(
                f"{path}: its feeds cannot be edited here: each must be written as a "
                "[[feeds]] table (not inline), and no other line may look like one (in a "
                "multi-line string); edit the file by hand"
            )

    @property
    def feeds(self) -> list[dict[str, Any]]:
        return list(self.data.get("feeds", []))

    def with_feeds_added(self, tables: Sequence[Mapping[str, Any]]) -> str:
        """The text with ``tables`` as new ``[[feeds]]`` tables after the last one (or at the
        end), checked to give exactly that."""
        document = tomlkit.document()
        aot = tomlkit.aot()
        for table in tables:
            item = tomlkit.table()
            for key in sorted(table, key=_key_rank):
                item[key] = table[key]
            aot.append(item)
        document["feeds"] = aot
        rendered = document.as_string().replace("\n", self.newline)
        lines = list(self.lines)
        at = self._spans[-1].end if self._spans else len(lines)
        if at and not lines[at - 1].endswith(("\n", "\r")):
            lines[at - 1] += self.newline
        blank = at and lines[at - 1].strip() and not rendered.startswith(self.newline)
        lines[at:at] = [self.newline if blank else "", rendered]
        text = "".join(lines)
        self._check(text, [*self.feeds, *(dict(t) for t in tables)])
        return text

    def with_feed_removed(self, index: int) -> str:
        """The text without the ``index``-th ``[[feeds]]`` table, its own comments (those
        right above it) and the blank lines after it; checked to give exactly that."""
        span = self._spans[index]
        lines = list(self.lines)
        end = span.end
        while end < len(lines) and not lines[end].strip():
            end += 1
        start = span.start
        if end == len(lines):  # the last thing in the file: no blank lines left at the end
            while start > 0 and not lines[start - 1].strip():
                start -= 1
        del lines[start:end]
        text = "".join(lines)
        feeds = self.feeds
        del feeds[index]
        self._check(text, feeds)
        return text

    def _check(self, text: str, feeds: list[dict[str, Any]]) -> None:
        """The edited ``text`` must read as the file's data with ``feeds``, and as settings."""
        source = str(self.path)
        try:
            data = toml_data(text, source)
        except ConfigError as exc:
            raise ConfigError(f"{source}: not changed: the edit would not parse ({exc})") from exc
        expected = {k: v for k, v in self.data.items() if k != "feeds"}
        if feeds:
            expected["feeds"] = feeds
        if data != expected:
            raise ConfigError(
                f"{source}: not changed: its layout is one this edit cannot follow safely "
                "(a [[feeds]] line inside a multi-line string?); edit it by hand"
            )
        try:
            file_settings(data, source)
        except ConfigError as exc:
            raise ConfigError(f"not changed: the edit would make it invalid: {exc}") from exc

    def write(self, text: str) -> None:
        """Replace the file with ``text``, atomically, keeping its mode (and owner, when
        allowed). A file changed since it was read is left alone."""
        target = self.path.resolve()  # a symlinked config stays a symlink
        try:
            info = target.stat()
            handle, temporary = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
        temporary_path = Path(temporary)
        try:
            with os.fdopen(handle, "wb") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            temporary_path.chmod(stat.S_IMODE(info.st_mode))
            if (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(PermissionError):
                    os.chown(temporary, info.st_uid, info.st_gid)
            if target.read_bytes() != self.raw:
                raise ConfigError(
                    f"{self.path}: changed by someone else while being edited; nothing "
                    "written, try again"
                )
            temporary_path.replace(target)
        except OSError as exc:
            temporary_path.unlink(missing_ok=True)
            raise ConfigError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
        except BaseException:
            temporary_path.unlink(missing_ok=True)
            raise


def _key_rank(key: str) -> int:
    return KEY_ORDER.index(key) if key in KEY_ORDER else len(KEY_ORDER)


def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _feed_spans(lines: Sequence[str]) -> list[_Span]:
    """Where each ``[[feeds]]`` table is: from the comments right above its header to its
    last line of content (not the blank lines after it, nor the comments right above the
    next header, which are that table's)."""
    headers = [i for i, line in enumerate(lines) if _ANY_HEADER.fullmatch(line.rstrip("\r\n"))]
    spans = []
    for position, header in enumerate(headers):
        if not _FEEDS_HEADER.fullmatch(lines[header].rstrip("\r\n")):
            continue
        following = headers[position + 1] if position + 1 < len(headers) else len(lines)
        end = following
        if following < len(lines):
            while end - 1 > header and _comment(lines[end - 1]):
                end -= 1
        while end - 1 > header and not lines[end - 1].strip():
            end -= 1
        start = header
        while start > 0 and _comment(lines[start - 1]):
            start -= 1
        if start == 0:  # the file's own opening comment, not this table's
            start = header
        spans.append(_Span(start, end))
    return spans
