"""Articles: the raw text that annotation tasks point into."""

from __future__ import annotations

from django.db import models

from projects.core.models import Project


class Article(models.Model):
    # No single-column index on project: the unique (project, external_id) starts with it.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="articles", db_index=False)
    # Unique per project, so re-importing a file updates articles instead of duplicating them.
    # Files without ids get a content hash here.
    external_id = models.CharField(max_length=255)
    title = models.CharField(max_length=1000, blank=True)
    text = models.TextField()
    source = models.CharField(max_length=255, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    domain = models.CharField(max_length=64, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=["project", "external_id"], name="article_external_id_unique")]

    def __str__(self) -> str:
        return self.title or self.external_id
