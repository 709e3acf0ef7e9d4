"""Guidelines: read the current version and every older one, see what changed; managers edit
them (each edit is a new version, made by ``projects.core.services.project_update``)."""

from __future__ import annotations

import difflib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path

from projects.core.exceptions import DomainError
from projects.core.models import GuidelineVersion, Role
from projects.core.services import project_update
from projects.web.views.common import project_for_page

MAX_GUIDELINES = 200_000


def line_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(op, line) pairs, op in ' ', '-', '+': a plain line diff for the template to escape."""
    rows = []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        if line.startswith("? "):
            continue
        rows.append((line[0], line[2:]))
    return rows


@login_required
def guidelines(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.ANNOTATOR)
    can_edit = membership.has_role(Role.MANAGER)
    if request.method == "POST":
        if not can_edit:
            raise Http404("Not found.")
        text = request.POST.get("guidelines", "").replace("\r\n", "\n")
        if len(text) > MAX_GUIDELINES:
            messages.error(request, f"Guidelines are limited to {MAX_GUIDELINES} characters.")
        else:
            try:
                before = project.guidelines_version
                project = project_update(project=project, actor=request.user, guidelines=text)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                if project.guidelines_version != before:
                    messages.success(request, f"Saved as version {project.guidelines_version}.")
                else:
                    messages.info(request, "No changes.")
                return redirect("web-guidelines", project.pk)
    versions = GuidelineVersion.objects.filter(project=project).select_related("created_by").order_by("-version")
    compare = None
    try:
        old_version = int(request.GET.get("compare", ""))
    except ValueError:
        old_version = None
    if old_version is not None:
        old = versions.filter(version=old_version).first()
        if old is not None:
            compare = {"version": old_version, "rows": line_diff(old.text, project.guidelines)}
    return render(
        request,
        "web/labeling/guidelines.html",
        {"project": project, "versions": versions, "can_edit": can_edit, "compare": compare},
    )


@login_required
def guideline_version(request: HttpRequest, project_id: int, version: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.ANNOTATOR)
    row = GuidelineVersion.objects.filter(project=project, version=version).select_related("created_by").first()
    if row is None:
        raise Http404("No such version.")
    return render(request, "web/labeling/guideline_version.html", {"project": project, "row": row})


urlpatterns = [
    path("projects/<int:project_id>/guidelines/", guidelines, name="web-guidelines"),
    path("projects/<int:project_id>/guidelines/v<int:version>/", guideline_version, name="web-guideline-version"),
]
