"""Webhooks: CRUD and roles, the SSRF guard, signed delivery to a local receiver, retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from projects.exports import webhooks
from projects.exports.models import DeliveryStatus, Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    """A fake webhook receiver on 127.0.0.1 that records requests and answers ``status``."""
    state = {"requests": [], "status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            length = int(self.headers["Content-Length"])
            state["requests"].append((dict(self.headers), self.rfile.read(length)))
            self.send_response(state["status"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/hook"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def allow_local(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


def hooks_url(project) -> str:
    return f"/api/v1/projects/{project.pk}/webhooks/"


def test_crud_by_manager(project, client_for, manager, allow_local, receiver):
    client = client_for(manager)
    created = client.post(hooks_url(project), {"url": receiver["url"], "events": ["export.ready"]}, format="json")
    assert created.status_code == 201
    hook = created.json()
    assert len(hook["secret"]) == 64
    assert client.get(hooks_url(project)).json()["results"][0]["id"] == hook["id"]
    patched = client.patch(f"{hooks_url(project)}{hook['id']}/", {"is_active": False, "rotate_secret": True})
    assert patched.status_code == 200 and patched.json()["is_active"] is False
    assert patched.json()["secret"] != hook["secret"]
    assert client.delete(f"{hooks_url(project)}{hook['id']}/").status_code == 204
    assert not Webhook.objects.exists()


def test_roles(project, client_for, annotator, reviewer, outsider, allow_local, receiver):
    data = {"url": receiver["url"], "events": ["task.completed"]}
    assert client_for(annotator).post(hooks_url(project), data, format="json").status_code == 403
    assert client_for(reviewer).get(hooks_url(project)).status_code == 403
    assert client_for(outsider).get(hooks_url(project)).status_code == 404


def test_internal_url_is_refused_without_the_allow_list(project, client_for, manager):
    for target in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "ftp://example.com/x"):
        response = client_for(manager).post(
            hooks_url(project), {"url": target, "events": ["export.ready"]}, format="json"
        )
        assert response.status_code == 400, target


def test_unknown_event_is_400(project, client_for, manager, allow_local, receiver):
    response = client_for(manager).post(hooks_url(project), {"url": receiver["url"], "events": ["nope"]}, format="json")
    assert response.status_code == 400


def test_event_is_delivered_signed(project, manager, allow_local, receiver, django_capture_on_commit_callbacks):
    hook = webhooks.webhook_create(project=project, actor=manager, url=receiver["url"], events=["task.completed"])
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhook_dispatch("task.completed", project.pk, {"task_id": 7})
        webhooks.webhook_dispatch("export.ready", project.pk, {"export_id": 1})  # not subscribed
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.response_status == 200
    assert delivery.attempts == 1
    ((headers, body),) = receiver["requests"]
    expected = "sha256=" + hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Annotator-Signature"] == expected
    assert headers["X-Annotator-Event"] == "task.completed"
    assert json.loads(body) == {
        "event": "task.completed",
        "project_id": project.pk,
        "delivery_id": delivery.pk,
        "data": {"task_id": 7},
    }
    assert webhooks.webhook_deliver(delivery_id=delivery.pk) is None  # delivered: never sent twice
    assert len(receiver["requests"]) == 1


def test_failures_back_off_then_give_up(project, manager, allow_local, receiver):
    receiver["status"] = 500
    hook = webhooks.webhook_create(project=project, actor=manager, url=receiver["url"], events=["task.completed"])
    delivery = WebhookDelivery.objects.create(webhook=hook, event="task.completed", body="{}")
    waits = [webhooks.webhook_deliver(delivery_id=delivery.pk) for _ in range(webhooks.MAX_ATTEMPTS)]
    assert waits[:-1] == [webhooks.backoff_seconds(n) for n in range(1, webhooks.MAX_ATTEMPTS)]
    assert waits[:3] == [10, 20, 40]
    assert waits[-1] is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert (delivery.attempts, delivery.response_status, delivery.error) == (webhooks.MAX_ATTEMPTS, 500, "HTTP 500")


def test_delivery_rechecks_the_ssrf_guard(project, manager, allow_local, receiver, settings):
    hook = webhooks.webhook_create(project=project, actor=manager, url=receiver["url"], events=["task.completed"])
    settings.OUTBOUND_ALLOWED_HOSTS = []
    delivery = WebhookDelivery.objects.create(webhook=hook, event="task.completed", body="{}")
    assert webhooks.webhook_deliver(delivery_id=delivery.pk) == webhooks.backoff_seconds(1)
    delivery.refresh_from_db()
    assert "internal address" in delivery.error and receiver["requests"] == []


def test_annotation_submit_reaches_the_webhook(
    project, client_for, manager, annotator, allow_local, receiver, django_capture_on_commit_callbacks
):
    from tests import factories

    webhooks.webhook_create(
        project=project, actor=manager, url=receiver["url"], events=["annotation.submitted", "task.completed"]
    )
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "business"}}, format="json"
        )
    assert response.status_code == 201
    events = sorted(json.loads(body)["event"] for _, body in receiver["requests"])
    assert events == ["annotation.submitted", "task.completed"]
