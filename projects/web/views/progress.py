"""Progress page: per project, per annotator and per required skill (same data as the API)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from projects.assignment.progress import project_progress
from projects.core.models import Role
from projects.web.views.common import project_for_page


@login_required
def progress_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    data = project_progress(project=project)
    totals = data["project"]
    percent = round(100 * totals["completed"] / totals["tasks"]) if totals["tasks"] else 0
    return render(
        request,
        "web/progress/progress.html",
        {"project": project, "membership": membership, "progress": data, "totals": totals, "percent": percent},
    )


urlpatterns = [path("projects/<int:project_id>/progress/", progress_page, name="web-progress")]
