"""Fuzz the API from its own OpenAPI document (schemathesis): no input may produce a 5xx.

Schemathesis generates valid and invalid requests for every operation in /openapi.json and
checks each answer: no server error, a documented status code and content type, and a body that
matches the documented schema. Bounded: a fixed number of examples per operation.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.conftest import ServerHandle

EXAMPLES = 60
TOKEN = "fuzz-token"


@pytest.fixture
def api_schema(ese_server_factory: Any) -> OpenApiSchema:
    # Tokens on, so the document declares security and the fuzzer also checks that calls
    # without (or with a wrong) token are refused. One token for both roles: one header.
    shard: ServerHandle = ese_server_factory(
        ESE_MAX_BATCH="20", ESE_INGEST_TOKEN=TOKEN, ESE_ANALYTICS_TOKEN=TOKEN
    )
    schema = schemathesis.openapi.from_url(f"{shard.url}/openapi.json")
    schema.config.update(base_url=shard.url, headers={"Authorization": f"Bearer {TOKEN}"})
    # A batch over ESE_MAX_BATCH (the schema's maxItems) is refused with 413 (a server limit,
    # like the body size), which the ese-client reports; count it as a proper rejection.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_breaks_the_api(case: Any) -> None:
    case.call_and_validate()
