"""The carrier push API: keys, agent scoping, idempotency, oversized batches."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import AgentApiKey, CallRecord, CdrImport
from billing.services.agent_api_keys import agent_api_key_create, agent_api_key_revoke
from billing.services.cdr_import import MAX_API_BATCH
from tests.billing import cdr_fixtures

cdr_world = cdr_fixtures.cdr_world
SH = ZoneInfo("Asia/Shanghai")
URL = "/api/cdrs/"


def call(call_id, number="4008100001", **kw):
    data = {
        "call_id": call_id,
        "service_number": number,
        "caller_number": "138****1234",
        "caller_area": "广东深圳",
        "answer_number": "+8613900139000",
        "start_time": "2026-03-02 09:15:00",
        "duration_seconds": 61,
        "direction": "inbound",
        "status": "answered",
    }
    data.update(kw)
    return data


def push(raw_key, payload, **extra):
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return Client().post(
        URL,
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw_key}",
        HTTP_ACCEPT_LANGUAGE="en",
        **extra,
    )


@pytest.fixture
def key(cdr_world):
    _key, raw = agent_api_key_create(agent=cdr_world.agent, name="carrier")
    return raw


def test_the_route_is_named_and_in_the_schema(db):
    assert reverse("api:cdrs") == URL
    schema = Client().get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/cdrs/" in schema.content


def test_a_batch_is_imported_rated_and_summarised(cdr_world, key):
    # Given two good calls and one for an unknown number
    payload = {
        "calls": [
            call("API-1"),
            call("API-2", start_time="2026-03-02 01:00:00+00:00", duration_seconds=0),
            call("API-3", number="4008999999"),
        ]
    }
    # When the carrier pushes them
    response = push(key, payload)
    # Then the good ones are stored and rated, the bad one explained by index
    assert response.status_code == 200
    body = response.json()
    assert (body["received"], body["imported"], body["duplicates"]) == (3, 2, 0)
    assert body["rejected"] == 1
    assert body["errors"] == [
        {
            "index": 2,
            "call_id": "API-3",
            "reason": "Unknown 400 number 400-899-9999.",
        }
    ]
    first = CallRecord.objects.get(call_id="API-1")
    assert first.billable_minutes == 2 and first.rated_at is not None
    second = CallRecord.objects.get(call_id="API-2")
    assert second.start_time == dt.datetime(2026, 3, 2, 9, 0, tzinfo=SH)
    imp = CdrImport.objects.get(pk=body["import_id"])
    assert (imp.source, imp.agent_id) == ("api", cdr_world.agent.pk)
    assert imp.errors.get().line_number == 3
    assert AgentApiKey.objects.get().last_used_at is not None


def test_a_retried_batch_imports_nothing_twice(cdr_world, key):
    payload = {"calls": [call("R-1"), call("R-2", start_time="2026-03-03 10:00:00")]}
    first = push(key, payload).json()
    again = push(key, payload).json()
    assert (first["imported"], first["duplicates"]) == (2, 0)
    assert (again["imported"], again["duplicates"]) == (0, 2)
    assert CallRecord.objects.count() == 2


def test_an_agents_key_cannot_import_another_agents_numbers(cdr_world, key):
    # Given agent A's key and a call on agent B's number
    response = push(key, {"calls": [call("X-1", number="4008200001")]})
    body = response.json()
    assert body["imported"] == 0
    assert "not a number of your companies" in body["errors"][0]["reason"]
    assert not CallRecord.objects.exists()
    # And B's own key may
    _k, other = agent_api_key_create(agent=cdr_world.other_agent, name="b")
    assert (
        push(other, {"calls": [call("X-1", number="4008200001")]}).json()["imported"]
        == 1
    )


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer h4a_deadbeef_not-a-key", 401),
        ("Token abc", 401),
    ],
)
def test_requests_without_a_valid_key_are_refused(cdr_world, header, status):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client().post(
        URL,
        data=json.dumps({"calls": [call("N-1")]}),
        content_type="application/json",
        **extra,
    )
    assert response.status_code == status
    assert not CallRecord.objects.exists()


def test_a_revoked_key_is_refused(cdr_world):
    key_row, raw = agent_api_key_create(agent=cdr_world.agent, name="old")
    agent_api_key_revoke(key=key_row)
    assert push(raw, {"calls": [call("V-1")]}).status_code == 401


def test_only_the_hash_of_a_key_is_stored(cdr_world):
    key_row, raw = agent_api_key_create(agent=cdr_world.agent, name="k")
    assert raw not in key_row.key_hash and len(key_row.key_hash) == 64
    assert raw.startswith(f"h4a_{key_row.prefix}_")


def test_an_oversized_batch_is_refused_with_413(cdr_world, key):
    calls = [call(f"O-{i}") for i in range(MAX_API_BATCH + 1)]
    response = push(key, {"calls": calls})
    assert response.status_code == 413
    assert str(MAX_API_BATCH) in response.json()["detail"]
    assert not CallRecord.objects.exists()


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"calls": 5}', b'{"calls": []}', b'{"calls": ["x"]}', b"\xff"],
)
def test_a_malformed_batch_is_refused_with_400(cdr_world, key, body):
    response = push(key, body)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not CdrImport.objects.exists()


def test_row_errors_use_the_same_validation_as_files(cdr_world, key):
    calls = [
        call("E-1", duration_seconds=-5),
        call("E-2", start_time="2026/03/02 09:15"),
        call("E-3", direction="sideways"),
        call("E-4", service_number="4.0081E+09"),
        call("E-5", number="4008100002", start_time="2026-03-05 10:00:00"),
        call("E-1", start_time="2026-03-04 10:00:00"),
        {"call_id": "E-7"},
    ]
    body = push(key, {"calls": calls}).json()
    reasons = {e["index"]: e["reason"] for e in body["errors"]}
    assert "negative" in reasons[0]
    assert "Bad start time" in reasons[1]
    assert "Unknown direction" in reasons[2]
    assert "Excel" in reasons[3]
    assert "not in service" in reasons[4]
    assert "Missing value" in reasons[6]
    # The first E-1 was refused, so the corrected E-1 later in the batch is new
    assert 5 not in reasons
    assert body["imported"] == 1
    assert CallRecord.objects.get().duration_seconds == 61


def test_nul_bytes_and_lone_surrogates_are_refused_not_crashed_on(cdr_world, key):
    calls = [
        call("NUL-1", service_number="400\x00810"),
        call("SUR-\udb89", start_time="2026-03-02 10:00:00"),
        call("AREA-1", caller_area="广东\x00深圳"),
    ]
    body = json.dumps({"calls": calls})  # \u0000 and a lone \udb89 as JSON escapes
    response = push(key, body)
    assert response.status_code == 200
    result = response.json()
    assert (result["imported"], result["rejected"]) == (0, 3)
    assert "not allowed" in result["errors"][1]["reason"]
    assert CdrImport.objects.get().errors.count() == 3
