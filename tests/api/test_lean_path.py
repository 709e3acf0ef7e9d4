"""The lean POST of next-task and submit (``annotator.lean``) answers as DRF's dispatch does.

Each case runs twice on the same database state (a rolled-back transaction each): through the
lean path, then with the lean path switched off, so DRF answers. Status, error body, the
headers and the success body (timestamps and new ids aside) must be equal, and the case must have taken the
path it is meant to.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.test import Client
from django.utils import timezone

from annotator import lean
from projects.assignment import services as assignment_services
from projects.core import ratelimit
from projects.core.models import ApiToken, TokenScope
from projects.core.services import token_create
from tests import factories

RESULT = {"result": {"topic": "business"}}
# Differ between two runs on the same state: the clock, and sequences (not rolled back).
VOLATILE = ("lease_expires_at", "created_at", "updated_at", "submitted_at", "id")
COMPARED_HEADERS = (
    "Content-Type",
    "Allow",
    "Vary",
    "WWW-Authenticate",
    "Retry-After",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Content-Security-Policy",
)


@pytest.fixture
def world(project, annotator, outsider):
    task = factories.TaskFactory(article__project=project)
    factories.TaskFactory(article__project=project)
    _, key = token_create(user=annotator, name="script")
    _, outsider_key = token_create(user=outsider, name="script")
    _, read_key = token_create(user=annotator, name="read", scope=TokenScope.READ)
    return {
        "project": project,
        "task": task,
        "annotator": annotator,
        "key": key,
        "outsider_key": outsider_key,
        "read_key": read_key,
    }


@pytest.fixture
def lean_calls(monkeypatch):
    """The views whose requests took the lean path."""
    calls: list[str] = []
    real = lean.LeanPostView._lean_post

    def counted(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(lean.LeanPostView, "_lean_post", counted)
    return calls


def _answer(response) -> tuple:
    body = response.content
    if response.get("Content-Type") == "application/json" and body:
        body = json.loads(body)
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in VOLATILE}
    headers = {h: response.get(h) for h in COMPARED_HEADERS}
    return response.status_code, headers, body


def _both(monkeypatch, send) -> tuple[tuple, tuple]:
    """``send()``'s answer through the lean path and through DRF, on the same database state."""
    answers = []
    for drf in (False, True):
        cache.clear()
        with monkeypatch.context() as patch:
            if drf:
                patch.setattr(lean, "_plain", lambda request: False)
            with transaction.atomic():
                answers.append(_answer(send()))
                transaction.set_rollback(True)
    return answers[0], answers[1]


def _next(world, client: Client, **extra):
    return client.post(f"/api/v1/projects/{world['project'].pk}/next-task/", content_type="application/json", **extra)


def _submit(world, client: Client, body=None, **extra):
    data = json.dumps(RESULT) if body is None else body
    return client.post(
        f"/api/v1/tasks/{world['task'].pk}/annotations/", data=data, content_type="application/json", **extra
    )


def _token_client(key: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


def _held(world) -> None:
    assert _next(world, _token_client(world["key"])).status_code == 200


LEAN_CASES = {
    "next_task": (lambda w: _next(w, _token_client(w["key"])), 200),
    "next_task_bearer": (lambda w: _next(w, Client(HTTP_AUTHORIZATION=f"Bearer {w['key']}")), 200),
    "next_task_accept_json": (lambda w: _next(w, _token_client(w["key"]), HTTP_ACCEPT="application/json"), 200),
    "next_task_outsider": (lambda w: _next(w, _token_client(w["outsider_key"])), 404),
    "next_task_no_credentials": (lambda w: _next(w, Client()), 401),
    "next_task_unknown_token": (lambda w: _next(w, _token_client("nope")), 401),
    "next_task_malformed_header": (lambda w: _next(w, Client(HTTP_AUTHORIZATION="Token a b")), 401),
    "next_task_read_scope": (lambda w: _next(w, _token_client(w["read_key"])), 403),
    "next_task_missing_project": (
        lambda w: _token_client(w["key"]).post("/api/v1/projects/999999/next-task/", content_type="application/json"),
        404,
    ),
    "submit": (lambda w: (_held(w), _submit(w, _token_client(w["key"])))[1], 201),
    "submit_not_held": (lambda w: _submit(w, _token_client(w["key"])), 404),
    "submit_outsider": (lambda w: _submit(w, _token_client(w["outsider_key"])), 404),
    "submit_malformed_json": (lambda w: (_held(w), _submit(w, _token_client(w["key"]), body="{"))[1], 400),
    "submit_nan": (lambda w: (_held(w), _submit(w, _token_client(w["key"]), body='{"result": NaN}'))[1], 400),
    "submit_list_body": (lambda w: (_held(w), _submit(w, _token_client(w["key"]), body="[1]"))[1], 400),
    "submit_empty_body": (lambda w: (_held(w), _submit(w, _token_client(w["key"]), body=""))[1], 400),
    "submit_invalid_result": (
        lambda w: (_held(w), _submit(w, _token_client(w["key"]), body='{"result": {"topic": "nope"}}'))[1],
        400,
    ),
    "submit_lead_time_as_text": (
        lambda w: (
            _held(w),
            _submit(w, _token_client(w["key"]), body='{"result": {"topic": "business"}, "lead_time": "2.5"}'),
        )[1],
        201,
    ),
    "submit_negative_lead_time": (
        lambda w: (
            _held(w),
            _submit(w, _token_client(w["key"]), body='{"result": {"topic": "business"}, "lead_time": -1}'),
        )[1],
        400,
    ),
    "submit_read_scope": (lambda w: _submit(w, _token_client(w["read_key"]), body="{"), 403),
    "submit_no_credentials": (lambda w: _submit(w, Client(), body="{"), 401),
}

DRF_CASES = {
    "next_task_get": (lambda w: _token_client(w["key"]).get(f"/api/v1/projects/{w['project'].pk}/next-task/"), 405),
    "next_task_query_string": (
        lambda w: _token_client(w["key"]).post(
            f"/api/v1/projects/{w['project'].pk}/next-task/?format=json", content_type="application/json"
        ),
        200,
    ),
    "next_task_accept_html": (lambda w: _next(w, _token_client(w["key"]), HTTP_ACCEPT="text/html"), 200),
    "next_task_accept_xml": (lambda w: _next(w, _token_client(w["key"]), HTTP_ACCEPT="application/xml"), 406),
    "submit_text_plain": (
        lambda w: _token_client(w["key"]).post(
            f"/api/v1/tasks/{w['task'].pk}/annotations/", data="x", content_type="text/plain"
        ),
        415,
    ),
    "submit_form": (
        lambda w: (_held(w), _token_client(w["key"]).post(f"/api/v1/tasks/{w['task'].pk}/annotations/", data={}))[1],
        400,
    ),
    "submit_options": (lambda w: _token_client(w["key"]).options(f"/api/v1/tasks/{w['task'].pk}/annotations/"), 200),
}


@pytest.mark.parametrize("case", sorted(LEAN_CASES))
def test_lean_path_answers_as_drf_does(case, world, lean_calls, monkeypatch):
    send, expected = LEAN_CASES[case]
    lean_answer, drf_answer = _both(monkeypatch, lambda: send(world))
    assert lean_calls, "the lean path was not taken"
    assert lean_answer[0] == expected, lean_answer
    assert lean_answer == drf_answer


@pytest.mark.parametrize("case", sorted(DRF_CASES))
def test_unusual_requests_go_to_drf(case, world, lean_calls, monkeypatch):
    send, expected = DRF_CASES[case]
    with transaction.atomic():
        response = send(world)
        transaction.set_rollback(True)
    assert response.status_code == expected, response.content[:300]
    assert lean_calls == (["NextTaskView"] if case == "submit_form" else [])  # the form case holds the task first


def test_token_refusals_answer_as_drf_does(world, lean_calls, monkeypatch):
    token = ApiToken.objects.get(user=world["annotator"], name="script")
    for change in (
        {"revoked_at": timezone.now()},
        {"expires_at": timezone.now() - timedelta(seconds=1)},
    ):
        ApiToken.objects.filter(pk=token.pk).update(**change)
        lean_answer, drf_answer = _both(monkeypatch, lambda: _next(world, _token_client(world["key"])))
        assert lean_answer[0] == 401 and lean_answer[1]["WWW-Authenticate"] == "Token"
        assert lean_answer == drf_answer
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=None, expires_at=None)
    type(world["annotator"]).objects.filter(pk=world["annotator"].pk).update(is_active=False)
    lean_answer, drf_answer = _both(monkeypatch, lambda: _next(world, _token_client(world["key"])))
    assert lean_answer[0] == 401 and lean_answer == drf_answer
    assert len(lean_calls) == 3


def test_blocked_address_gets_429_as_with_drf(world, lean_calls, monkeypatch):
    # Retry-After counts down the seconds left in the window: the two runs may straddle a second.
    monkeypatch.setattr(ratelimit, "retry_after_seconds", lambda: 42)

    def blocked_then_send():
        for _ in range(settings.TOKEN_FAILURES_PER_IP):
            ratelimit.record_failure("token-ip", "127.0.0.1")
        return _next(world, _token_client(world["key"]))

    lean_answer, drf_answer = _both(monkeypatch, blocked_then_send)
    assert lean_answer[0] == 429 and lean_answer[1]["Retry-After"] == "42"
    assert lean_answer == drf_answer and lean_calls


def test_lean_path_counts_invalid_tokens_towards_the_limit(world, lean_calls):
    _next(world, _token_client("nope"))
    assert ratelimit.failures("token-ip", "127.0.0.1") == 1 and lean_calls


def test_success_headers_and_bytes(world, lean_calls):
    response = _next(world, _token_client(world["key"]))
    assert lean_calls == ["NextTaskView"]
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == "POST, OPTIONS" and response["Vary"] == "Accept"
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    assert b": " not in response.content  # DRF's compact JSON
    submit = _submit(world, _token_client(world["key"]))
    assert submit.status_code == 201 and submit["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert submit.json()["result"] == RESULT["result"]
    assert _submit(world, _token_client(world["key"])).status_code == 200  # an update


def _csrf_headers(client: Client) -> dict:
    from django.middleware.csrf import _get_new_csrf_string

    token = _get_new_csrf_string()
    client.cookies[settings.CSRF_COOKIE_NAME] = token
    return {"HTTP_X_CSRFTOKEN": token}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("next_with_csrf", 200),
        ("next_without_csrf", 403),
        ("next_wrong_csrf", 403),
        ("submit_with_csrf", 201),
        ("submit_without_csrf", 403),
        ("submit_malformed_json_with_csrf", 400),
        ("submit_malformed_json_wrong_csrf", 400),
        ("submit_malformed_json_no_cookie", 403),
    ],
)
def test_session_users_answer_as_with_drf(name, expected, world, lean_calls, monkeypatch):
    def send():
        client = Client(enforce_csrf_checks=True)
        client.force_login(world["annotator"])
        headers = _csrf_headers(client) if "with_csrf" in name or "wrong_csrf" in name else {}
        if "wrong_csrf" in name:
            headers = {"HTTP_X_CSRFTOKEN": "x" * 32}
        if "no_cookie" in name:
            client.cookies.pop(settings.CSRF_COOKIE_NAME, None)
        if name.startswith("next"):
            return _next(world, client, **headers)
        _held(world)
        return _submit(world, client, body="{" if "malformed" in name else None, **headers)

    lean_answer, drf_answer = _both(monkeypatch, send)
    assert lean_calls
    assert lean_answer[0] == expected, lean_answer
    if expected == 403:
        assert lean_answer[2]["error"]["message"].startswith("CSRF Failed")
    assert lean_answer[1]["Vary"] == "Accept, Cookie"
    assert lean_answer == drf_answer


def test_inactive_session_user_is_401(world, lean_calls, monkeypatch):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["annotator"])
    type(world["annotator"]).objects.filter(pk=world["annotator"].pk).update(is_active=False)
    lean_answer, drf_answer = _both(monkeypatch, lambda: _next(world, client, **_csrf_headers(client)))
    assert lean_answer[0] == 401 and lean_answer == drf_answer and lean_calls


def test_database_loss_is_503_on_the_lean_path(world, lean_calls, monkeypatch):
    def down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(assignment_services, "task_next_in_project", down)
    response = _next(world, _token_client(world["key"]))
    assert lean_calls == ["NextTaskView"]
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["error"]["code"] == "database_unavailable"
