"""What the command line's global options resolve to (the config file, a database URL), handed
to every command: `ingest.cli` makes it, the commands of `ingest.cli_read` and `ingest.cli_db`
use it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import StoreError

if TYPE_CHECKING:
    from ingest.config import Settings
    from ingest.store import Store


class Context:
    """What the group's options resolve to, handed to each command."""

    def __init__(self, config: Path | None, database: str | None) -> None:
        self.config = config
        self.database = database

    def settings(self, **sections: dict[str, Any]) -> Settings:
        """The settings, with ``sections`` (command-line flags) over the rest."""
        from ingest.config import load_settings

        overrides = {"database": {"url": self.database}} if self.database else {}
        return load_settings(self.config, overrides={**overrides, **sections})

    @contextmanager
    def store(self, url: str | None = None, **options: bool) -> Iterator[Store]:
        """The archive, closed on the way out; by default an existing one only."""
        from ingest.config import DEFAULT_DATABASE_URL
        from ingest.store import Store

        options.setdefault("create", False)
        settings = None
        if url is None:
            settings = self.settings()
            url = settings.database.url
        try:
            store = Store.open(url, **options)
        except StoreError as exc:
            # The default archive because no config was found: say where it was looked for.
            if settings and settings.not_found and settings.database.url == DEFAULT_DATABASE_URL:
                raise StoreError(
                    f"{exc} (that is the default database: {settings.no_config()})"
                ) from exc
            raise
        try:
            yield store
        finally:
            store.close()
