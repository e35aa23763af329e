"""The Docker image's contract (no Docker engine runs here, so the file itself is checked)."""

from __future__ import annotations

import re
from pathlib import Path

DOCKERFILE = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text(encoding="utf-8")


def instructions(name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+)$", DOCKERFILE, flags=re.M)


def test_slim_python_base() -> None:
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", instructions("FROM")[-1])


def test_runs_as_a_non_root_user() -> None:
    (user,) = instructions("USER")
    assert user not in {"root", "0"}
    assert f"useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin {user}" in (
        DOCKERFILE
    )


def test_data_volume_holds_the_archive() -> None:
    assert instructions("VOLUME") == ['["/data"]']
    assert "INGEST_DATABASE_URL=sqlite:////data/" in DOCKERFILE


def test_ingest_is_the_entrypoint_and_the_daemon_the_default() -> None:
    (entrypoint,) = instructions("ENTRYPOINT")
    assert entrypoint.startswith('["ingest"')
    assert instructions("CMD")[-1] == '["daemon"]'


def test_healthcheck_asks_the_daemons_healthz() -> None:
    assert re.search(r"^HEALTHCHECK .*\\\n\s+CMD .*127\.0\.0\.1:9464/healthz", DOCKERFILE, re.M)
