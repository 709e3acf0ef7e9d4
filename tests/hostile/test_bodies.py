"""Hostile request bodies: each gets a clear 4xx in the one error shape, and nothing is stored."""

from __future__ import annotations

import json

import pytest

from tests.api.test_permissions import assert_unchanged, db_snapshot

pytestmark = pytest.mark.django_db


def deep(levels: int, open_: str = "[", close: str = "]") -> str:
    return open_ * levels + close * levels


def deep_objects(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


RAW_BODIES = {
    "deep arrays 100k": deep(100_000),
    "deep objects 100k": deep_objects(100_000),
    "deep arrays 5k": deep(5_000),
    "deep inside result": '{"result": {"answer": ' + deep(50_000) + "}}",
    "moderately deep result (65 levels)": '{"result": {"answer": ' + deep(65) + "}}",
    "lone high surrogate": '{"result": {"answer": "abc\\ud800"}}',
    "lone low surrogate in a key": '{"result": {"\\udc00": "x"}}',
    "NaN": '{"result": {"quality": {"relevance": NaN}}}',
    "Infinity": '{"result": {"quality": {"relevance": Infinity}}}',
    "truncated": '{"result": {"topic": "politics"',
    "trailing garbage": '{"result": {}} xyz',
    "not UTF-8": b'{"result": {"answer": "\xff\xfe"}}',
    "empty": "",
    "null": "null",
    "a list": "[]",
    "a string": '"result"',
    "huge number": '{"result": {"quality": {"relevance": ' + "9" * 5000 + "}}}",
}


@pytest.mark.parametrize("name", list(RAW_BODIES))
@pytest.mark.parametrize("endpoint", ["annotations", "draft"])
def test_hostile_json_bodies_are_refused(hostile, name, endpoint):
    project, task, user, client = hostile
    body = RAW_BODIES[name]
    before = db_snapshot()
    method = client.post if endpoint == "annotations" else client.put
    response = method(f"/api/v1/tasks/{task.pk}/{endpoint}/", body, content_type="application/json")
    assert 400 <= response.status_code < 500, f"{name}: {response.status_code} {response.content[:200]!r}"
    assert set(response.json()) == {"error"}
    assert_unchanged(before, db_snapshot(), name)


def test_deep_json_on_project_settings_is_refused(hostile):
    project, task, user, client = hostile
    before = db_snapshot()
    body = '{"label_schema": ' + deep_objects(100_000) + "}"
    response = client.patch(f"/api/v1/projects/{project.pk}/", body, content_type="application/json")
    assert response.status_code == 400
    assert_unchanged(before, db_snapshot(), "deep schema")


def test_oversized_body_is_refused(hostile, settings):
    project, task, user, client = hostile
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20_000
    before = db_snapshot()
    body = json.dumps({"result": {"answer": "x" * 30_000}})
    response = client.put(f"/api/v1/tasks/{task.pk}/draft/", body, content_type="application/json")
    assert response.status_code in (400, 413)
    assert_unchanged(before, db_snapshot(), "oversized body")


def test_overlong_text_answer_is_refused(hostile):
    project, task, user, client = hostile
    before = db_snapshot()
    response = client.post(
        f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"answer": "x" * 200_001}}, format="json"
    )
    assert response.status_code == 400
    assert "answer" in response.json()["error"]["fields"]
    assert_unchanged(before, db_snapshot(), "overlong answer")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_wrong_content_types_do_not_store_anything(hostile, content_type):
    project, task, user, client = hostile
    before = db_snapshot()
    response = client.post(f"/api/v1/tasks/{task.pk}/annotations/", "result=topic", content_type=content_type)
    assert 400 <= response.status_code < 500
    assert_unchanged(before, db_snapshot(), content_type)


@pytest.mark.parametrize(
    "result",
    [
        None,
        [],
        "politics",
        {"topic": "not-an-option"},
        {"topic": ["politics"]},
        {"tags": ["breaking", "breaking"]},
        {"tags": "breaking"},
        {"unknown_field": 1},
        {"quality": {"relevance": 6}},
        {"quality": {"relevance": True}},
        {"quality": {"relevance": 2.5}},
        {"quality": {"nonsense": 3}},
        {"better": {"choice": "c"}},
        {"better": {"choice": "a", "reason": 5}},
        {"better": {"choice": "a", "extra": 1}},
        {"answer": 5},
        {"answer": {"nested": "x"}},
    ],
    ids=repr,
)
def test_results_that_break_the_schema_are_refused(hostile, result):
    project, task, user, client = hostile
    before = db_snapshot()
    response = client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": result}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("invalid", "invalid_result")
    assert_unchanged(before, db_snapshot(), repr(result))
