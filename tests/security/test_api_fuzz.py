"""The API's OpenAPI schema, fuzzed with schemathesis: no 500s, and every
response matches what the schema says.

The schema is served by the app itself (``/api/schema/``) and the requests go
through Django's WSGI handler in-process, with a valid company key (the
read-only company API) or agent key (the CDR push API) and real data behind
them. Examples are derandomized and bounded per operation, so a failure
reproduces and the test stays within seconds.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from billing.services.agent_api_keys import agent_api_key_create
from tests.security.walk import build_world

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def in_process_app():
    """Django's WSGI app, keeping the test's transaction open between calls
    (as django.test.Client does: no connection closing around requests)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", app)
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation, headers: dict, real_id=None) -> set[int]:
    """Run the examples of ``operation``; returns the statuses seen.

    With ``real_id``, every other example addresses that existing object
    (random ids alone would only ever test the 404 path).
    """
    statuses = set()
    count = [0]

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case):
        count[0] += 1
        if real_id is not None and count[0] % 2 and case.path_parameters:
            case.path_parameters = {**case.path_parameters, "id": real_id}
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        statuses.add(response.status_code)

    run()
    return statuses


def test_the_company_api_survives_fuzzing_and_matches_its_schema(in_process_app):
    world = build_world()
    headers = {"Authorization": f"Bearer {world.raw_api_key}"}
    operations = [
        op for op in _operations(in_process_app) if op.path.startswith("/api/v1/")
    ]

    ids = {"/api/v1/invoices/": world.invoice.pk, "/api/v1/lines/": world.usage_line.pk}

    def real_id(path):
        return next((v for k, v in ids.items() if path.startswith(k)), None)

    calls = {op.label: _fuzz(op, headers, real_id(op.path)) for op in operations}

    # The key works: each operation answered with data at least once.
    assert len(calls) >= 6, calls
    assert all(200 in seen for seen in calls.values()), calls


def test_the_cdr_push_api_survives_fuzzing_and_matches_its_schema(in_process_app):
    world = build_world()
    _key, raw = agent_api_key_create(agent=world.company.agent, name="carrier")
    headers = {"Authorization": f"Bearer {raw}"}
    operations = [
        op for op in _operations(in_process_app) if op.path.startswith("/api/cdrs/")
    ]

    calls = {op.label: _fuzz(op, headers) for op in operations}

    assert list(calls) == ["POST /api/cdrs/"], calls
    assert 401 not in calls["POST /api/cdrs/"], calls
