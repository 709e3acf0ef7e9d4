"""Pre-labeling: predictions, configured labelers, trained models and runs (split into chunks)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from projects.core.models import Project


class Prediction(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="predictions")
    task = models.ForeignKey("assignment.Task", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.CharField(max_length=200)
    result = models.JSONField(default=dict)
    score = models.FloatField(null=True, blank=True, help_text="Model confidence in [0, 1].")
    # Smallest gap between the best and second-best class probability over the prediction's
    # choice fields; the task's uncertainty is the lowest margin over its predictions.
    margin = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        # Unique per (task, model version): re-running a pre-label job upserts instead of duplicating.
        constraints = [models.UniqueConstraint(fields=["task", "model_version"], name="prediction_task_version_unique")]
        indexes = [models.Index(fields=["project", "model_version"], name="prediction_version_idx")]

    def __str__(self) -> str:
        return f"{self.model_version} on task {self.task_id}"


class LabelerKind(models.TextChoices):
    RULES = "rules", "Rules (keywords, regular expressions, gazetteers)"
    SKLEARN = "sklearn", "Model trained on this project (scikit-learn)"
    LS_BACKEND = "ls_backend", "Label Studio ML backend (HTTP)"
    OPENAI = "openai", "OpenAI-compatible chat completions (HTTP)"


class Labeler(models.Model):
    """A labeler configured for a project by an admin (remote endpoints live only here)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labelers")
    name = models.SlugField(max_length=64)
    kind = models.CharField(max_length=16, choices=LabelerKind.choices)
    config = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    # Debounce for automatic retraining: set when a training job is queued, cleared when it ends.
    training_queued_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("project", "name")
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="labeler_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class TrainedModel(models.Model):
    """A scikit-learn model we trained on the project's annotations. Only files listed here, with
    a matching SHA-256, are ever loaded."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="trained_models")
    version = models.PositiveIntegerField()
    path = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")
    sha256 = models.CharField(max_length=64)
    annotation_count = models.PositiveIntegerField(default=0)
    info = models.JSONField(default=dict, blank=True, help_text="Fields trained, classes, examples, metrics.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("project", "-version")
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="trained_model_version_unique")]

    def __str__(self) -> str:
        return self.model_version

    @property
    def model_version(self) -> str:
        return f"sklearn-{self.version}"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class PrelabelRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prelabel_runs")
    labeler = models.ForeignKey(Labeler, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    labeler_kind = models.CharField(max_length=16, choices=LabelerKind.choices)
    labeler_name = models.CharField(max_length=64)
    config = models.JSONField(default=dict, blank=True, help_text="The labeler configuration used (snapshot).")
    model_version = models.CharField(max_length=200)
    task_filter = models.JSONField(default=dict, blank=True)
    chunk_size = models.PositiveIntegerField(default=500)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True, help_text="Run-level error or note.")
    cancel_requested = models.BooleanField(default=False)
    fingerprint = models.CharField(max_length=64, help_text="Hash of labeler, config and filter.")
    idempotency_key = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["project", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="prelabel_run_idempotency_unique",
            )
        ]
        indexes = [models.Index(fields=["project", "status"], name="prelabel_run_status_idx")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.model_version}, {self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def progress(self) -> float:
        return round(100.0 * (self.done + self.failed) / self.total, 1) if self.total else 0.0


class ChunkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped (run cancelled)"


class PrelabelChunk(models.Model):
    """A slice of a run's task ids: one Celery message. Its status flips to done exactly once, in
    the transaction that stores its predictions, so counts never double on a retry."""

    run = models.ForeignKey(PrelabelRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    task_ids = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=ChunkStatus.choices, default=ChunkStatus.PENDING)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{task_id, message}], capped.")
    attempts = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("run", "index")
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="prelabel_chunk_unique")]

    def __str__(self) -> str:
        return f"chunk {self.index} of run {self.run_id}"
