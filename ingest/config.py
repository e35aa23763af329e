"""Settings, declared once: defaults < config file < ``INGEST_*`` environment < command-line flags.

Each section is a pydantic model whose fields carry their default and help. Values read from the
TOML file are validated strictly (a string is not a boolean); values from the environment are
strings and are coerced. Any error becomes one `ConfigError` line naming the file and the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from ingest import __version__
from ingest.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/ingest.toml")
DEFAULT_DATABASE_URL = "sqlite:///data/ingest.sqlite3"
DEFAULT_USER_AGENT = f"ingest/{__version__} (news feed archiver; python-httpx)"
ENV_PREFIX = "INGEST_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the archive; a relative SQLite path is relative to the "
        "working directory.",
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
    timeout: float = Field(20.0, gt=0, description="Seconds allowed for one whole request.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds allowed to connect.")
    max_redirects: int = Field(5, ge=0, description="Redirects followed before giving up.")
    max_page_bytes: int = Field(
        10_000_000, gt=0, description="Largest article page kept, counted after decompression."
    )
    max_feed_bytes: int = Field(
        20_000_000, gt=0, description="Largest feed document kept, counted after decompression."
    )
    concurrency: int = Field(32, gt=0, description="Requests in flight at once, all hosts.")
    per_host: int = Field(4, gt=0, description="Requests in flight at once to one host.")
    max_attempts: int = Field(5, gt=0, description="Tries of a failing article page.")
    retry_after: float = Field(
        600.0, gt=0, description="Seconds before the first retry of a failed page; doubles after."
    )


class ExtractSettings(_Section):
    workers: int = Field(0, ge=0, description="Extraction processes; 0 means one per core.")
    keep_raw: bool = Field(True, description="Keep each fetched page's raw bytes (compressed).")


class FeedSettings(_Section):
    url: str = Field(description="The feed's URL (http or https).")
    name: str | None = Field(None, description="A short name to select the feed with --feed.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    fetch: FetchSettings = FetchSettings()
    extract: ExtractSettings = ExtractSettings()
    feeds: list[FeedSettings] = []
    _source: str = PrivateAttr("(defaults)")

    @property
    def source(self) -> str:
        """The config file these settings were read from, or "(defaults)"."""
        return self._source

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
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


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
    explicit = path is not None or bool(environ.get(f"{ENV_PREFIX}CONFIG"))
    if path is None:
        path = Path(environ.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG_PATH)
    data: dict[str, Any] = {}
    source = "(defaults)"
    if explicit or path.exists():
        data = _read_toml(path)
        source = str(path)
    try:
        settings = Settings.model_validate(data, strict=True)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc.errors()[0])}") from exc
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
    return settings
