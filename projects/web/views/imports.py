"""Import page for managers: upload a file with options, watch the job's progress, read its row
errors and download them as CSV. The page's script posts to and polls the imports API."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse

from projects.core.models import Role
from projects.imports import selectors
from projects.imports.models import ImportFormat
from projects.imports.options import DEFAULT_PAYLOAD_FIELDS
from projects.web.views.common import project_for_page


@login_required
def import_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    jobs = list(selectors.imports_of(project=project)[:20])
    selected = request.GET.get("job", "")
    config = {
        "api": f"/api/v1/projects/{project.pk}/imports/",
        "job": int(selected) if selected.isdigit() else (jobs[0].pk if jobs else None),
        "page": reverse("web-imports", args=[project.pk]),
        "maxBytes": settings.IMPORT_MAX_UPLOAD_BYTES,
    }
    return render(
        request,
        "web/imports/imports.html",
        {
            "project": project,
            "jobs": jobs,
            "formats": ImportFormat.choices,
            "payload_fields": ",".join(DEFAULT_PAYLOAD_FIELDS),
            "max_mb": settings.IMPORT_MAX_UPLOAD_BYTES // 2**20,
            "config": config,
        },
    )


urlpatterns = [path("projects/<int:project_id>/import/", import_page, name="web-imports")]
