"""Settings, declared once: defaults < config file < ``INGEST_*`` environment < command-line flags.

Each section is a pydantic model whose fields carry their default and help. Values read from the
TOML file are validated strictly (a string is not a boolean); values from the environment are
strings and are coerced. Any error becomes one `ConfigError` line naming the file and the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ingest import __version__
from ingest.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/ingest.toml")
DEFAULT_DATABASE_URL = "sqlite:///data/ingest.sqlite3"
DEFAULT_USER_AGENT = f"ingest/{__version__} (news feed archiver; python-httpx)"
ENV_PREFIX = "INGEST_"

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|[smhd])")


def parse_duration(value: Any) -> Any:
    """``"500ms"``, ``"15m"``, ``"1h30m"``, ``"90s"``, ``"2d"`` or a number of seconds ->
    seconds."""
    if isinstance(value, bool):
        return value  # left for the float check to refuse
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return float(text)
        if text and _DURATION.sub("", text).strip() == "":
            return float(sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text)))
        raise ValueError(f"{value!r} is not a duration (like 500ms, 90s, 15m, 1h30m, 2d)")
    return value


def parse_moment(value: Any) -> Any:
    """A TOML date or date-time, or an ISO 8601 string of one (``"2025-01-01"``) -> an aware
    UTC datetime (a date is its midnight, a time without a zone is UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not a date (like 2025-01-01)") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


# A moment in the config file, the environment or a flag: a date or date-time, as UTC.
Moment = Annotated[datetime, BeforeValidator(parse_moment)]

# Every key that is a length of time is one of these two: a number of seconds or a string
# with units, in the file and in the environment alike.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Delay = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]  # 0: no wait


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the archive; a relative SQLite path is relative to the "
        "working directory.",
    )
    lease: Duration = Field(
        300.0,
        description="How long a feed's poll or a page claimed by one worker stays its own; a "
        "crashed worker's work returns to the others after this.",
    )

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        scheme = value.split(":", 1)[0]
        if "://" not in value or scheme.split("+", 1)[0] not in {"sqlite", "postgresql"}:
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value


class FetchSettings(_Section):
    user_agent: str = Field(DEFAULT_USER_AGENT, description="User-Agent sent with every request.")
    allow_private_networks: bool = Field(
        False, description="Allow requests to loopback and private addresses (tests, intranets)."
    )
    timeout: Duration = Field(20.0, description="Time allowed for one whole request.")
    connect_timeout: Duration = Field(10.0, description="Time allowed to connect.")
    max_redirects: int = Field(5, ge=0, description="Redirects followed before giving up.")
    max_page_bytes: int = Field(
        10_000_000, gt=0, description="Largest article page kept, counted after decompression."
    )
    max_feed_bytes: int = Field(
        20_000_000, gt=0, description="Largest feed document kept, counted after decompression."
    )
    read_timeout: Duration = Field(10.0, description="Time allowed between two reads.")
    concurrency: int = Field(32, gt=0, description="Requests in flight at once, all hosts.")
    per_host: int = Field(2, gt=0, description="Requests in flight at once to one host.")
    host_delay: Delay = Field(
        1.0, description="Time between two requests to one host (robots.txt may ask more)."
    )
    robots: bool = Field(True, description="Obey robots.txt (disallow, crawl-delay) for pages.")
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="Private networks (CIDR) allowed even when allow_private_networks is false.",
    )
    max_attempts: int = Field(5, gt=0, description="Tries of a failing article page.")
    retry_after: Duration = Field(
        600.0, description="Delay before the first retry of a failed page; doubles after."
    )
    max_retry_after: Duration = Field(
        86400.0, description="Longest Retry-After honoured; a longer one is cut to this."
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a network (like 10.0.0.0/8)") from exc
        return values


class ScheduleSettings(_Section):
    interval: Duration = Field(1800.0, description="Polling interval of a feed without its own.")
    min_interval: Duration = Field(300.0, description="No feed is polled more often than this.")
    max_interval: Duration = Field(86400.0, description="No feed waits longer than this.")
    adaptive: bool = Field(
        True,
        description="Adapt the interval of feeds without their own to how often they publish.",
    )
    error_backoff: Duration = Field(300.0, description="Delay after a feed's first failure.")
    max_error_backoff: Duration = Field(
        21600.0, description="Longest delay between polls of a failing feed (it keeps trying)."
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScheduleSettings:
        if self.min_interval > self.max_interval:
            raise ValueError("min_interval is longer than max_interval")
        return self


class DaemonSettings(_Section):
    listen: str = Field(
        "127.0.0.1:9464",
        description="host:port for /healthz and /metrics; empty to serve neither.",
    )
    tick: Duration = Field(10.0, description="How often the daemon looks for due feeds.")
    retry_every: Duration = Field(300.0, description="How often failed pages are retried.")
    reload_every: Duration = Field(30.0, description="How often the config file is re-read.")
    page_queue: int = Field(
        256, gt=0, description="Pages queued in memory at most; the rest wait in the database."
    )
    shutdown_timeout: Duration = Field(
        10.0, description="On SIGTERM/SIGINT, time allowed to finish work in flight."
    )

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        return _host_port(value, "127.0.0.1:9464")


class ServeSettings(_Section):
    listen: str = Field(
        "127.0.0.1:8080", description="host:port of `ingest serve` (the API and the pages)."
    )
    token: str = Field(
        "",
        description="Required when listen is not a loopback address: API clients send it as "
        "Authorization: Bearer, people type it once on the login page.",
    )

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if not value:
            raise ValueError("must be host:port, like 127.0.0.1:8080")
        return _host_port(value, "127.0.0.1:8080")

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("must be at least 16 characters (a guessable token guards nothing)")
        return value


def _host_port(value: str, example: str) -> str:
    if value and not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}", value):
        raise ValueError(f"must be host:port, like {example}")
    return value


class ExtractSettings(_Section):
    workers: int = Field(0, ge=0, description="Extraction processes; 0 means one per core.")
    timeout: Duration = Field(
        30.0, description="Time allowed to extract one page; the worker is replaced after."
    )
    keep_raw: bool = Field(True, description="Keep each fetched page's raw bytes (compressed).")


class SitemapSettings(_Section):
    max_depth: int = Field(
        2, ge=1, description="Levels of sitemap indexes read: 1 an index of sitemaps, 2 of indexes."
    )
    max_sitemaps: int = Field(
        50, ge=1, description="Child sitemaps fetched per poll, the most recently modified first."
    )
    max_urls: int = Field(
        50_000, ge=1, description="URLs or child sitemaps one document may list (the protocol's)."
    )
    backfill: Duration = Field(
        172800.0,
        description="Without a feed's since: dated URLs older than its first poll minus this "
        "are not fetched.",
    )
    first_undated: int = Field(
        100,
        ge=0,
        description="URLs without a date taken from a sitemap's first poll (the first listed); "
        "the others are remembered as seen.",
    )


# The default re-check schedule, after NewsDiffs: an article's page is looked at again every
# 15 minutes while its last change is under 3 hours old, then every 30 minutes under a day,
# 2 hours under a week, daily under 30 days, and no more after.
RECHECK_SCHEDULE = (
    (3 * 3600.0, 900.0),
    (86400.0, 1800.0),
    (7 * 86400.0, 7200.0),
    (30 * 86400.0, 86400.0),
)


def parse_recheck_schedule(value: Any) -> Any:
    """``{"3h" = "15m", "1d" = "30m"}`` (TOML: an age of the last change -> how often under
    it), or ``"3h=15m, 1d=30m"`` (the environment) -> ((age, every), ...) by age, seconds."""
    if isinstance(value, str):
        pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError(f"{value!r} is not a schedule (like 3h=15m, 1d=30m, 7d=2h)")
        value = {k.strip(): v.strip() for k, v in pairs}
    if isinstance(value, tuple | list):
        return value  # already parsed (settings layered again)
    if not isinstance(value, Mapping):
        raise ValueError('must be a table of ages and intervals, like { "3h" = "15m" }')
    steps = sorted((parse_duration(k), parse_duration(v)) for k, v in value.items())
    for age, every in steps:
        if not isinstance(age, float) or not isinstance(every, float) or age <= 0 or every <= 0:
            raise ValueError('ages and intervals must be positive durations (like 3h = "15m")')
    return tuple(steps)


class VersionsSettings(_Section):
    recheck: bool = Field(
        True,
        description="Look at recent articles' pages again (daemon and fetch), to keep each "
        "change of their text or title as a version.",
    )
    schedule: Annotated[
        tuple[tuple[float, float], ...], BeforeValidator(parse_recheck_schedule)
    ] = Field(
        RECHECK_SCHEDULE,
        description="How often a page is looked at again, by the age of its last change: "
        '{ "3h" = "15m", "1d" = "30m", "7d" = "2h", "30d" = "1d" }; none after the last age.',
    )


class FeedSettings(_Section):
    url: str = Field(description="The feed's URL (http or https).")
    name: str | None = Field(None, description="A short name to select the feed with --feed.")
    interval: Duration | None = Field(
        None, description="This feed's polling interval (within the schedule's bounds)."
    )
    type: Literal["feed", "sitemap"] = Field(
        "feed",
        description="feed (RSS, Atom, JSON Feed) or sitemap (a sitemap or sitemap index); a "
        "sitemap is also told by its content.",
    )
    since: Moment | None = Field(
        None,
        description="Sitemaps: URLs dated before this (news publication date, else lastmod) "
        "are not fetched; default: the first poll minus sitemaps.backfill.",
    )
    tags: list[str] = Field(
        default_factory=list,
        description="Labels to select the feed's articles with --tag (OPML folders come as tags).",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.strip() or value != value.strip():
                raise ValueError(f"{value!r} is not a tag (empty, or spaces around it)")
        if len(set(values)) < len(values):
            raise ValueError("a tag appears twice")
        return values


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    fetch: FetchSettings = FetchSettings()
    extract: ExtractSettings = ExtractSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    daemon: DaemonSettings = DaemonSettings()
    serve: ServeSettings = ServeSettings()
    sitemaps: SitemapSettings = SitemapSettings()
    versions: VersionsSettings = VersionsSettings()
    feeds: list[FeedSettings] = []
    _source: str = PrivateAttr("(defaults)")
    _not_found: Path | None = PrivateAttr(None)

    @property
    def source(self) -> str:
        """The config file these settings were read from, or "(defaults)"."""
        return self._source

    @property
    def not_found(self) -> Path | None:
        """The default config file, looked for and not found (the defaults apply), or None."""
        return self._not_found

    def no_config(self) -> str:
        """Where the config file was looked for, for a message: "" when one was read."""
        if self._not_found is None:
            return ""
        return (
            f"no config file at {self._not_found}, the default path; name one with --config "
            "PATH or INGEST_CONFIG"
        )

    @field_validator("feeds")
    @classmethod
    def _unique_feeds(cls, feeds: list[FeedSettings]) -> list[FeedSettings]:
        seen: set[str] = set()
        for feed in feeds:
            for key in (feed.url, feed.name):
                if key is not None and key in seen:
                    raise ValueError(f"{key!r} appears twice")
                if key is not None:
                    seen.add(key)
        return feeds


SECTIONS: dict[str, type[_Section]] = {
    "database": DatabaseSettings,
    "fetch": FetchSettings,
    "extract": ExtractSettings,
    "schedule": ScheduleSettings,
    "daemon": DaemonSettings,
    "serve": ServeSettings,
    "sitemaps": SitemapSettings,
    "versions": VersionsSettings,
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        return toml_data(raw.decode("utf-8"), str(path))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def toml_data(text: str, source: str) -> dict[str, Any]:
    """The TOML ``text`` of the config file ``source`` as data; `ConfigError` if it is not
    TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc


def file_settings(data: Mapping[str, Any], source: str) -> Settings:
    """The settings a config file's ``data`` gives alone (no environment, no flags), checked
    as `load_settings` checks them."""
    try:
        return Settings.model_validate(data, strict=True)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc.errors()[0])}") from exc


def config_path(path: Path | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file `ingest` reads: ``path`` (--config), else ``$INGEST_CONFIG``, else
    the default path; and whether it was named (a named file must exist)."""
    explicit = path is not None or bool(environ.get(f"{ENV_PREFIX}CONFIG"))
    if path is None:
        path = Path(environ.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG_PATH)
    return path, explicit


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``INGEST_<SECTION>_<KEY>`` values, each validated as its field (type, bounds, checks)."""
    out: dict[str, dict[str, Any]] = {}
    for section, model in SECTIONS.items():
        for key in model.model_fields:
            name = f"{ENV_PREFIX}{section}_{key}".upper()
            if name not in environ:
                continue
            try:
                model.__pydantic_validator__.validate_assignment(
                    model.model_construct(), key, environ[name]
                )
            except ValidationError as exc:
                message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
                raise ConfigError(f"environment: {name}: {message}") from exc
            out.setdefault(section, {})[key] = environ[name]
    return out


def _describe(error: Mapping[str, Any]) -> str:
    key = ""
    for part in error["loc"]:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{key or '(top level)'}: {message.removeprefix('Value error, ')}"


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Settings from defaults, the config file, the environment, then ``overrides`` (flags).

    ``path`` None means ``$INGEST_CONFIG`` or ``config/ingest.toml``; the default path may be
    missing (defaults then apply), an explicit one may not.
    """
    environ = os.environ if environ is None else environ
    path, explicit = config_path(path, environ)
    data: dict[str, Any] = {}
    source = "(defaults)"
    if explicit or path.exists():
        data = _read_toml(path)
        source = str(path)
    not_found = None if source != "(defaults)" else path.absolute()
    settings = file_settings(data, source)
    layered: dict[str, dict[str, Any]] = _env_overrides(environ)
    for section, values in (overrides or {}).items():
        layered.setdefault(section, {}).update(values)
    if layered:
        merged = settings.model_dump()
        for section, values in layered.items():
            merged[section].update(values)
        try:
            settings = Settings.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(f"command line: {_describe(exc.errors()[0])}") from exc
    settings._source = source
    settings._not_found = not_found
    return settings
