"""The API fuzzed from its own OpenAPI schema (schemathesis): a bounded number of generated
requests per operation against the real server; none may answer 500, and every answer must
match the schema (status, content type, body)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.newsroom import Newsroom
from tests.webserver import Server, make_archive, serve

EXAMPLES = 25  # per operation: the whole test stays within a few seconds


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("fuzz")
    with Newsroom() as room:
        config = make_archive(directory, room, f"sqlite:///{directory / 'archive.sqlite3'}")
    with serve(config) as running:
        yield running


def test_the_api_keeps_to_its_schema(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/api/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: Any) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(checks=checks)

        fuzz()
    assert calls >= 5 * len(operations)
