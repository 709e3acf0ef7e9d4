"""Reads for imports."""

from __future__ import annotations

from django.db.models import QuerySet

from projects.core.models import Project
from projects.imports.models import ImportJob


def imports_of(*, project: Project) -> QuerySet[ImportJob]:
    """The project's import jobs, newest first."""
    return ImportJob.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")
