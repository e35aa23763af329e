"""ingest: poll news feeds, fetch and clean every article, keep a searchable archive."""

from __future__ import annotations

__version__ = "0.1.0"
