"""Exports page: download the data now (streamed), build snapshots, list them with checksums."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from projects.core.exceptions import DomainError
from projects.core.models import Role
from projects.exports import selectors, services
from projects.exports.filters import parse_options
from projects.exports.formats import FORMATS
from projects.web.views.common import project_for_page


@login_required
def exports_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    jobs = selectors.exports_for_project(project=project)[:50]
    return render(
        request,
        "web/exports/exports.html",
        {"project": project, "membership": membership, "jobs": jobs, "formats": FORMATS.values()},
    )


@login_required
@require_POST
def snapshot_start(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    try:
        options = parse_options(request.POST, formats=tuple(FORMATS))
        job, created = services.export_snapshot_start(project=project, actor=request.user, options=options)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Snapshot {job.pk} {'started' if created else 'is already running'}.")
    return redirect("web-exports", project_id=project.pk)


urlpatterns = [
    path("projects/<int:project_id>/exports/", exports_page, name="web-exports"),
    path("projects/<int:project_id>/exports/snapshot/", snapshot_start, name="web-exports-snapshot"),
]
