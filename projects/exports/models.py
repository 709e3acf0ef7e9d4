"""Export snapshots (immutable, checksummed releases of a dataset) and webhooks with their delivery log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from projects.core.models import Project


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE_EXPORT_STATUSES = (ExportStatus.QUEUED, ExportStatus.RUNNING)


class ExportJob(models.Model):
    """A snapshot: the file one export produced, with everything needed to reproduce and check it.

    The schema and guideline versions (and the schema itself) are frozen at build time; the data
    file holds no timestamps of its own, so the same data and filters give byte-identical files.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=32)
    mode = models.CharField(max_length=16, default="consolidated")
    filters = models.JSONField(default=dict, blank=True, help_text="Normalized filters the file was built with.")
    # sha256 of (format, mode, filters): a second request for the same export while one runs returns it.
    params_hash = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    file = models.CharField(max_length=500, blank=True, help_text="Path in default storage.")
    card_file = models.CharField(max_length=500, blank=True, help_text="Dataset card (hf format).")
    manifest_file = models.CharField(max_length=500, blank=True, help_text="task id → label hash, for diffs.")
    row_count = models.PositiveIntegerField(default=0)
    task_count = models.PositiveIntegerField(default=0)
    annotation_count = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    schema_version = models.PositiveIntegerField(null=True, blank=True)
    guidelines_version = models.PositiveIntegerField(null=True, blank=True)
    label_schema = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Builds started (a stalled one is resumed).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="Last progress: the running build's heartbeat.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        indexes = [
            # The stalled-job sweep: active jobs by heartbeat.
            models.Index(fields=["updated_at"], condition=Q(status__in=["queued", "running"]), name="export_active_idx")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="export_idempotency_key_unique",
            ),
            # At most one queued or running job per identical request, enforced by the database.
            models.UniqueConstraint(
                fields=["project", "params_hash"],
                condition=Q(status__in=["queued", "running"]),
                name="export_one_active_per_params",
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format}, {self.status})"


class WebhookEvent(models.TextChoices):
    ANNOTATION_SUBMITTED = "annotation.submitted", "Annotation submitted"
    ANNOTATION_REVIEWED = "annotation.reviewed", "Annotation reviewed"
    TASK_COMPLETED = "task.completed", "Task completed"
    EXPORT_READY = "export.ready", "Export snapshot ready"


class Webhook(models.Model):
    """A URL called (POST, JSON, HMAC-SHA256 signed with ``secret``) when the chosen events happen."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, help_text="Event names this hook receives.")
    secret = models.CharField(max_length=128, help_text="Key of the X-Annotator-Signature HMAC.")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"webhook {self.pk} → {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event sent to one webhook: the body (signed as is), attempts and the last outcome."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    body = models.TextField(help_text="The exact JSON body sent (and signed).")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        indexes = [models.Index(fields=["webhook", "-id"], name="delivery_webhook_idx")]

    def __str__(self) -> str:
        return f"{self.event} to webhook {self.webhook_id} ({self.status})"
