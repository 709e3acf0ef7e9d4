"""Predictions: model pre-labels for tasks, one per (task, model version)."""

from __future__ import annotations

from django.db import models

from projects.core.models import Project


class Prediction(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="predictions")
    task = models.ForeignKey("assignment.Task", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.CharField(max_length=200)
    result = models.JSONField(default=dict)
    score = models.FloatField(null=True, blank=True, help_text="Model confidence in [0, 1].")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        # Unique per (task, model version): re-running a pre-label job upserts instead of duplicating.
        constraints = [models.UniqueConstraint(fields=["task", "model_version"], name="prediction_task_version_unique")]
        indexes = [models.Index(fields=["project", "model_version"], name="prediction_version_idx")]

    def __str__(self) -> str:
        return f"{self.model_version} on task {self.task_id}"
