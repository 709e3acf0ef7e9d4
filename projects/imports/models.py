"""Import jobs: one uploaded file (or JSON batch) turned into articles and tasks, with its progress
and a per-row error report."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from projects.core.models import Project

MAX_STORED_ERRORS = 1000
IDEMPOTENCY_HOURS = 24


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (ImportStatus.SUCCEEDED, ImportStatus.FAILED, ImportStatus.CANCELLED)


class ImportFormat(models.TextChoices):
    JSONL = "jsonl", "JSON lines"
    JSON = "json", "JSON array"
    CSV = "csv", "CSV"
    TSV = "tsv", "TSV"
    TXT = "txt", "Plain text (one article)"
    ZIP = "zip", "Zip of files"
    LABELSTUDIO = "labelstudio", "Label Studio tasks (JSON)"
    DOCCANO = "doccano", "doccano (JSONL)"


class ImportJob(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    format = models.CharField(max_length=16, choices=ImportFormat.choices)
    compression = models.CharField(max_length=8, blank=True, help_text='"gzip" or empty')
    options = models.JSONField(default=dict, blank=True)
    file_name = models.CharField(max_length=255, blank=True, help_text="The name the file was uploaded with.")
    file_path = models.CharField(max_length=500, blank=True, help_text="Stored upload, relative to MEDIA_ROOT.")
    file_size = models.BigIntegerField(default=0)
    # The Idempotency-Key header of the request that created the job (unique per project and user
    # while set; cleared when a newer request reuses it after IDEMPOTENCY_HOURS), and a hash of the
    # request (file content, name, format, options) to tell a retry from a different request.
    idempotency_key = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    rows_read = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)
    tasks_created = models.PositiveIntegerField(default=0)
    # Per-row errors [{"line": n, "file": "...", "message": "..."}], the first MAX_STORED_ERRORS of them.
    errors = models.JSONField(default=list, blank=True)
    errors_truncated = models.PositiveIntegerField(default=0, help_text="Row errors beyond the stored ones.")
    message = models.TextField(blank=True, help_text="Why the whole job failed, when it did.")
    # Runs started for this job: a run whose worker was lost is resumed by another (stalls.py).
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="Last progress: the running job's heartbeat.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["project", "-created_at"], name="importjob_project_idx"),
            # The stalled-job sweep: active jobs by heartbeat (finished ones are most rows).
            models.Index(
                fields=["updated_at"],
                condition=models.Q(status__in=["queued", "running"]),
                name="importjob_active_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "created_by", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="importjob_idempotency_key_unique",
            )
        ]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED
