"""ingest: poll news feeds, fetch and clean every article, keep a searchable archive."""

from __future__ import annotations

import sys

__version__ = "0.1.0"

# httpx imports its command-line client (click, rich, pygments: a tenth of a second of every
# start) whenever those are installed, as they are with ingest. We never use it; a None entry
# makes that import fail, which httpx expects and handles.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
