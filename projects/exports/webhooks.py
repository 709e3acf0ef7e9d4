"""Webhooks: registration, fan-out of domain events to deliveries, and signed delivery.

A delivery POSTs the JSON body ``{"event", "project_id", "delivery_id", "data"}`` with headers
``X-Annotator-Event``, ``X-Annotator-Delivery`` and ``X-Annotator-Signature: sha256=<hex>``, the
HMAC-SHA256 of the exact body bytes with the webhook's secret. A 2xx answer marks it delivered;
anything else (or a network error) is retried with exponential backoff up to ``MAX_ATTEMPTS``.
The URL goes through ``netguard.safe_fetch`` at every attempt (SSRF guard, pinned address);
redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from projects.core import dispatch
from projects.core.exceptions import ValidationFailed
from projects.core.models import Project
from projects.core.netguard import OutboundFetchError, OutboundURLRefused, check_outbound_url, safe_fetch
from projects.core.services import audit_log
from projects.exports import jobs
from projects.exports.formats.common import dumps
from projects.exports.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
from projects.exports.selectors import active_webhook_ids_for_event

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BASE_BACKOFF_SECONDS = 10
TIMEOUT_SECONDS = 10
SIGNATURE_HEADER = "X-Annotator-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_seconds(attempt: int) -> int:
    return BASE_BACKOFF_SECONDS * 2 ** max(0, attempt - 1)


def _check_events(events: list) -> list[str]:
    allowed = set(WebhookEvent.values)
    if not isinstance(events, list) or not events or not all(e in allowed for e in events):
        raise ValidationFailed(
            f"events must be a non-empty list of: {', '.join(WebhookEvent.values)}.", fields={"events": "invalid"}
        )
    return sorted(set(events))


@transaction.atomic
def webhook_create(*, project: Project, actor, url: str, events: list, is_active: bool = True) -> Webhook:
    """Register a webhook; the URL must pass the SSRF guard now, and again at every delivery."""
    check_outbound_url(url)
    hook = Webhook.objects.create(
        project=project,
        url=url,
        events=_check_events(events),
        is_active=is_active,
        secret=secrets.token_hex(32),
        created_by=actor,
    )
    audit_log(actor=actor, action="webhook.create", project=project, target=hook, data={"url": url})
    return hook


@transaction.atomic
def webhook_update(*, webhook: Webhook, actor, **changes) -> Webhook:
    before = {"url": webhook.url, "events": list(webhook.events), "is_active": webhook.is_active}
    if "url" in changes:
        check_outbound_url(changes["url"])
        webhook.url = changes["url"]
    if "events" in changes:
        webhook.events = _check_events(changes["events"])
    if "is_active" in changes:
        webhook.is_active = bool(changes["is_active"])
    if changes.get("rotate_secret"):
        webhook.secret = secrets.token_hex(32)
    webhook.save()
    after = {"url": webhook.url, "events": list(webhook.events), "is_active": webhook.is_active}
    diff = {k: {"from": before[k], "to": after[k]} for k in before if before[k] != after[k]}
    if changes.get("rotate_secret"):
        diff["secret"] = "rotated"
    audit_log(actor=actor, action="webhook.update", project=webhook.project, target=webhook, data=diff)
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook, actor) -> None:
    audit_log(actor=actor, action="webhook.delete", project=webhook.project, target=webhook, data={"url": webhook.url})
    webhook.delete()


def webhook_dispatch(name: str, project_id: int, data: dict) -> None:
    """Domain event handler: one delivery row per subscribed webhook, each sent by a job."""
    for hook_id in active_webhook_ids_for_event(project_id=project_id, event=name):
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(webhook_id=hook_id, event=name, body="")
            body = {"event": name, "project_id": project_id, "delivery_id": delivery.pk, "data": data}
            delivery.body = dumps(body).decode()
            delivery.save(update_fields=["body"])
            dispatch.enqueue(jobs.webhook_deliver_job, delivery.pk)


def webhook_deliver(*, delivery_id: int) -> int | None:
    """Try one delivery. Returns the seconds to wait before a retry, or None when finished."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None  # already delivered or given up: a redelivered job does nothing
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1, last_attempt_at=timezone.now())
    delivery.refresh_from_db(fields=["attempts"])
    hook = delivery.webhook
    body = delivery.body.encode()
    status_code, error = None, ""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Annotator-Webhook/1",
        "X-Annotator-Event": delivery.event,
        "X-Annotator-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: sign(hook.secret, body),
    }
    try:
        # Vets the URL, connects to the vetted address only; redirects are not followed.
        response = safe_fetch(
            hook.url,
            method="POST",
            body=body,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            max_redirects=0,
            max_bytes=64 * 1024,
        )
        status_code = response.status
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except (OutboundURLRefused, OutboundFetchError) as exc:
        error = exc.message[:1000]
    ok = status_code is not None and 200 <= status_code < 300
    final = ok or delivery.attempts >= MAX_ATTEMPTS
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        response_status=status_code,
        error=error,
        status=DeliveryStatus.DELIVERED if ok else (DeliveryStatus.FAILED if final else DeliveryStatus.PENDING),
        delivered_at=timezone.now() if ok else None,
    )
    if ok or final:
        return None
    return backoff_seconds(delivery.attempts)
