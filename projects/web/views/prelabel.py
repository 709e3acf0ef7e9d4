"""Pre-labeling page for managers: start a run, watch its progress, cancel it, read its per-task
errors, train the project's model, and see how pre-labels were used. Admins also add labelers.

Forms post (CSRF-protected) to small views that call the same services as the API; the page's
script polls the run API to move the progress bars.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from projects.core.exceptions import DomainError
from projects.core.models import Role
from projects.prelabel import selectors, services, training
from projects.prelabel.models import Labeler, LabelerKind, PrelabelRun, TrainedModel
from projects.web.views.common import project_for_page

RULES_EXAMPLE = {
    "rules": [
        {"field": "topic", "value": "business", "keywords": ["bank", "market"]},
        {"field": "entities", "label": "ORG", "gazetteer": ["Quantix"], "case_sensitive": True},
    ]
}


def _back(project_id: int) -> HttpResponse:
    return redirect("web-prelabel", project_id=project_id)


def _json_field(text: str, name: str) -> dict | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DomainError(f"{name} is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise DomainError(f"{name} must be a JSON object.")
    return value


def _int_or_none(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise DomainError(f"{text!r} is not a task id.")
    return int(text)


@login_required
def prelabel_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    runs = list(selectors.runs_of(project=project)[:50])
    return render(
        request,
        "web/prelabel/prelabel.html",
        {
            "project": project,
            "membership": membership,
            "is_admin": membership.has_role(Role.ADMIN),
            "runs": runs,
            "labelers": Labeler.objects.filter(project=project).order_by("name"),
            "models": TrainedModel.objects.filter(project=project).order_by("-version")[:10],
            "stats": selectors.prediction_acceptance(project),
            "kinds": LabelerKind.choices,
            "rules_example": json.dumps(RULES_EXAMPLE, indent=2),
            "run_urls": {
                run.pk: f"/api/v1/projects/{project.pk}/prelabel-runs/{run.pk}/" for run in runs if run.is_active
            },
        },
    )


@login_required
@require_POST
def prelabel_start(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    post = request.POST
    try:
        task_filter: dict = {}
        if post.get("unlabeled"):
            task_filter["unlabeled"] = True
        if post.get("skill", "").strip():
            task_filter["skill"] = post["skill"].strip()
        for key in ("id_from", "id_to"):
            value = _int_or_none(post.get(key))
            if value is not None:
                task_filter[key] = value
        labeler = post.get("labeler", "")
        config = _json_field(post.get("config", ""), "Config") if labeler == LabelerKind.RULES else None
        run, created = services.prelabel_run_start(
            project=project, actor=request.user, labeler=labeler, config=config, task_filter=task_filter or "all"
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(project.pk)
    if created:
        messages.success(request, f"Run {run.pk} started ({run.model_version}).")
    else:
        messages.info(request, f"Run {run.pk} with the same settings is already {run.status}.")
    return redirect("web-prelabel-run", project_id=project.pk, run_id=run.pk)


@login_required
def prelabel_run(request: HttpRequest, project_id: int, run_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    run = get_object_or_404(PrelabelRun, pk=run_id, project=project)
    return render(
        request,
        "web/prelabel/run.html",
        {
            "project": project,
            "membership": membership,
            "run": run,
            "errors": selectors.run_errors(run=run),
            "run_urls": {run.pk: f"/api/v1/projects/{project.pk}/prelabel-runs/{run.pk}/"} if run.is_active else {},
        },
    )


@login_required
@require_POST
def prelabel_cancel(request: HttpRequest, project_id: int, run_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    run = get_object_or_404(PrelabelRun, pk=run_id, project=project)
    try:
        services.prelabel_run_cancel(run=run, actor=request.user)
        messages.success(request, f"Run {run.pk} cancelled.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("web-prelabel-run", project_id=project.pk, run_id=run.pk)


@login_required
@require_POST
def prelabel_train(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    try:
        training.model_train_request(project=project, actor=request.user)
        messages.success(request, "Training queued; the new model appears below when it is ready.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return _back(project.pk)


@login_required
@require_POST
def prelabel_labeler_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.ADMIN)
    try:
        services.labeler_save(
            project=project,
            actor=request.user,
            name=request.POST.get("name", "").strip()[:64],
            kind=request.POST.get("kind", ""),
            config=_json_field(request.POST.get("config", ""), "Config") or {},
        )
        messages.success(request, "Labeler saved.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return _back(project.pk)


urlpatterns = [
    path("projects/<int:project_id>/prelabel/", prelabel_page, name="web-prelabel"),
    path("projects/<int:project_id>/prelabel/start/", prelabel_start, name="web-prelabel-start"),
    path("projects/<int:project_id>/prelabel/train/", prelabel_train, name="web-prelabel-train"),
    path("projects/<int:project_id>/prelabel/labelers/", prelabel_labeler_add, name="web-prelabel-labeler-add"),
    path("projects/<int:project_id>/prelabel/runs/<int:run_id>/", prelabel_run, name="web-prelabel-run"),
    path("projects/<int:project_id>/prelabel/runs/<int:run_id>/cancel/", prelabel_cancel, name="web-prelabel-cancel"),
]
