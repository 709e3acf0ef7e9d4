"""Quality settings per project, stored metric snapshots, per-task consensus and gold alerts.

Dashboards and the API read these rows; they never compute on a page view. ``quality.recompute``
(see ``jobs.py``) writes them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from projects.assignment.models import Task
from projects.core.models import Project


class ConsensusMethod(models.TextChoices):
    MAJORITY = "majority", "Majority vote"
    DAWID_SKENE = "dawid_skene", "Dawid–Skene"


class QualitySettings(models.Model):
    """Per-project options, and the bookkeeping that debounces recomputation."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="quality_settings")
    gold_threshold = models.FloatField(default=0.7, help_text="Alert when an annotator's gold accuracy is below this.")
    gold_min_answers = models.PositiveIntegerField(default=5, help_text="Gold answers needed before alerting.")
    pause_on_alert = models.BooleanField(default=False, help_text="Pause the annotator's queue on an alert.")
    consensus_method = models.CharField(
        max_length=16, choices=ConsensusMethod.choices, default=ConsensusMethod.DAWID_SKENE
    )
    bootstrap_samples = models.PositiveIntegerField(default=200)
    # Debouncing: a change sets dirty_at; a recompute that started after it clears the need.
    dirty_at = models.DateTimeField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    running_since = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True, help_text="Start time of the last finished recompute.")

    class Meta:
        verbose_name_plural = "quality settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(gold_threshold__gte=0) & Q(gold_threshold__lte=1), name="quality_threshold_range"
            ),
        ]

    def __str__(self) -> str:
        return f"quality settings of {self.project_id}"


class QualitySnapshot(models.Model):
    """All figures of one recompute, as JSON (see ``services.compute`` for its keys)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quality_snapshots")
    created_at = models.DateTimeField(auto_now_add=True)
    figures = models.JSONField(default=dict)
    annotation_count = models.PositiveIntegerField(default=0)
    task_count = models.PositiveIntegerField(default=0)
    duration_seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ("-created_at", "-id")
        get_latest_by = ("created_at", "id")
        indexes = [models.Index(fields=["project", "-created_at"], name="quality_snapshot_idx")]

    def __str__(self) -> str:
        return f"quality snapshot {self.pk} of {self.project_id}"


class AnnotatorQuality(models.Model):
    """One annotator's figures in a snapshot."""

    snapshot = models.ForeignKey(QualitySnapshot, on_delete=models.CASCADE, related_name="annotators")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    submitted = models.PositiveIntegerField(default=0)
    median_lead_time = models.FloatField(null=True, blank=True)
    agreement = models.FloatField(null=True, blank=True, help_text="Share of labels equal to consensus")
    gold_answers = models.PositiveIntegerField(default=0)
    gold_accuracy = models.FloatField(null=True, blank=True)
    gold_low = models.FloatField(null=True, blank=True)
    gold_high = models.FloatField(null=True, blank=True)
    estimated_accuracy = models.FloatField(null=True, blank=True, help_text="From Dawid–Skene, without gold")
    details = models.JSONField(default=dict, help_text="Gold accuracy per field and per skill, throughput per day")

    class Meta:
        ordering = ("snapshot", "user_id")
        constraints = [models.UniqueConstraint(fields=["snapshot", "user"], name="annotator_quality_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} in snapshot {self.snapshot_id}"


class TaskConsensus(models.Model):
    """The consensus label of one task for one field, with its confidence (adjudication order)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="consensus")
    field = models.CharField(max_length=64)
    method = models.CharField(max_length=16, choices=ConsensusMethod.choices)
    label = models.JSONField(null=True)
    confidence = models.FloatField()
    votes = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("confidence", "task_id")
        constraints = [models.UniqueConstraint(fields=["task", "field"], name="task_consensus_unique")]
        indexes = [models.Index(fields=["project", "field", "confidence"], name="task_consensus_order_idx")]

    def __str__(self) -> str:
        return f"{self.field} of task {self.task_id}: {self.label} ({self.confidence:.2f})"


class GoldAlert(models.Model):
    """An annotator's gold accuracy fell below the project's threshold. One open alert per person."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="gold_alerts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    accuracy = models.FloatField()
    threshold = models.FloatField()
    gold_answers = models.PositiveIntegerField()
    paused_queue = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["project", "user"], condition=Q(resolved_at__isnull=True), name="gold_alert_one_open"
            )
        ]

    def __str__(self) -> str:
        return f"gold alert for {self.user_id} in {self.project_id} ({self.accuracy:.2f})"
