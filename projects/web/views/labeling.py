"""The labeling page: "Start labeling" goes task to task through the queue; ``/tasks/{id}/label/``
opens one task (a leased one, or one of your earlier submissions to revisit and edit).

The page is generated in the browser from the label schema (``static/web/labeling.js``); the
server hands it everything through ``json_script`` and the JS talks to the REST API.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse

from projects.annotations.models import Annotation, AnnotationStatus
from projects.assignment.api import task_for_user
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.assignment.services import queue_outlook, task_next_for_user
from projects.core import selectors as core_selectors
from projects.core.exceptions import NotFound
from projects.core.models import Project, Role
from projects.core.schema import resolve_path
from projects.web.colors import schema_colors
from projects.web.views.common import project_for_page

# Progress on the labeling page, which an annotator loads for every task. Counting a project's
# tasks reads an index entry per task (about 50 ms per 100,000 tasks on PostgreSQL), so large
# projects follow the project counts' policy (``projects.core.selectors``: from
# COUNTS_EXACT_BELOW tasks, one count shared by everybody for COUNTS_CACHE_SECONDS in Django's
# cache), and the user's "open" figure is the project's open tasks: an exact one would need every
# task the user ever finished checked against the tasks still open. The user's own "done" stays
# exact (one index range of their history). Only the two task counts are read here, not the
# project's four.


def project_task_counts(project: Project) -> tuple[int, int]:
    """(tasks, complete tasks) of the project; cached a few seconds for large projects."""
    key = f"labeling-progress:{project.pk}"
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001 - the cache (Redis) is down: count
        cached = None
    if cached is not None:
        return tuple(cached)
    tasks = Task.objects.filter(project=project)
    counts = (tasks.count(), tasks.filter(is_complete=True).count())
    if counts[0] >= core_selectors.COUNTS_EXACT_BELOW:
        try:
            cache.set(key, counts, core_selectors.COUNTS_CACHE_SECONDS)
        except Exception:  # noqa: BLE001
            pass
    return counts


def progress_for(*, project: Project, user) -> dict:
    """Done and open for the user, and for the project (tasks complete / total). ``approximate``:
    a large project's figures, up to COUNTS_CACHE_SECONDS old, "open" being the project's."""
    total, done = project_task_counts(project)
    mine_done = Annotation.objects.filter(project=project, user=user, status=AnnotationStatus.SUBMITTED).count()
    approximate = total >= core_selectors.COUNTS_EXACT_BELOW
    if approximate:
        mine_left = total - done
    else:
        finished_by_me = Assignment.objects.filter(
            project=project, user=user, status__in=[AssignmentStatus.SUBMITTED, AssignmentStatus.SKIPPED]
        ).values("task_id")
        mine_left = Task.objects.filter(project=project, is_complete=False).exclude(pk__in=finished_by_me).count()
    return {
        "mine_done": mine_done,
        "mine_left": mine_left,
        "project_done": done,
        "project_total": total,
        "approximate": approximate,
    }


def guidelines_notice(*, project: Project, user) -> dict | None:
    """Set when the user's latest submission was made under older guidelines than the current ones."""
    last = (
        Annotation.objects.filter(project=project, user=user, status=AnnotationStatus.SUBMITTED)
        .exclude(guideline_version=None)
        .order_by("-submitted_at", "-id")
        .values_list("guideline_version", flat=True)
        .first()
    )
    if last is None or last >= project.guidelines_version:
        return None
    return {"seen": last, "current": project.guidelines_version}


@login_required
def label_start(request: HttpRequest, project_id: int) -> HttpResponse:
    """Lease the next task (or the one you hold) and open it; "all done" when the queue is empty."""
    project, membership = project_for_page(request, project_id, Role.ANNOTATOR)
    assignment = task_next_for_user(project=project, user=request.user)
    if assignment is not None:
        return redirect(reverse("web-task-label", args=[assignment.task_id]) + "?queue=1")
    return render(
        request,
        "web/labeling/done.html",
        {
            "project": project,
            "progress": progress_for(project=project, user=request.user),
            "outlook": queue_outlook(project=project, user=request.user),
        },
    )


def form_data(*, schema: dict, text: str, title: str, payload: dict | None) -> dict:
    """What labeling.js needs to build the form: schema, label colours, prefills, pairwise texts."""
    prefill = {}
    pairs = {}
    for field in schema.get("fields", []):
        if field["type"] == "text" and field.get("prefill"):
            value = resolve_path(payload, field["prefill"])
            prefill[field["name"]] = value if isinstance(value, str) else ""
        elif field["type"] == "pairwise":
            pairs[field["name"]] = [
                v if isinstance(v := resolve_path(payload, p), str) else ("" if v is None else str(v))
                for p in field["between"]
            ]
    return {
        "task": {"text": text, "title": title},
        "schema": schema,
        "colors": schema_colors(schema),
        "prefill": prefill,
        "pairs": pairs,
    }


def _task_data(task: Task, user) -> dict:
    mine = task.annotations.filter(user=user).first()
    data = form_data(schema=task.project.label_schema, text=task.text, title=task.article.title, payload=task.payload)
    data["task"].update(id=task.pk, source=task.article.source)
    return data | {
        "predictions": [
            {"id": p.id, "model_version": p.model_version, "score": p.score, "result": p.result}
            for p in task.predictions.order_by("-created_at", "-id")[:5]
        ],
        "draft": mine.draft if mine else None,
        "submitted": mine.result if mine and mine.status == AnnotationStatus.SUBMITTED else None,
        "submitted_prediction": mine.prediction_id if mine else None,
        "guideline_version": task.project.guidelines_version,
        "urls": {
            "submit": f"/api/v1/tasks/{task.pk}/annotations/",
            "draft": f"/api/v1/tasks/{task.pk}/draft/",
            "skip": f"/api/v1/tasks/{task.pk}/skip/",
            "comments": f"/api/v1/tasks/{task.pk}/comments/",
            "next": reverse("web-label-start", args=[task.project_id]),
        },
    }


@login_required
def task_label(request: HttpRequest, task_id: int) -> HttpResponse:
    try:
        task, membership = task_for_user(request, task_id)
    except NotFound:
        raise Http404("Task not found.") from None
    project = task.project
    data = _task_data(task, request.user)
    data["queue"] = request.GET.get("queue") == "1"
    return render(
        request,
        "web/labeling/task.html",
        {
            "project": project,
            "task": task,
            "membership": membership,
            "data": data,
            "progress": progress_for(project=project, user=request.user),
            "notice": guidelines_notice(project=project, user=request.user),
        },
    )


@login_required
def my_submissions(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.ANNOTATOR)
    rows = (
        Annotation.objects.filter(project=project, user=request.user, status=AnnotationStatus.SUBMITTED)
        .select_related("task__article")
        .order_by("-submitted_at", "-id")
    )
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "web/labeling/my_submissions.html", {"project": project, "page": page})


urlpatterns = [
    path("projects/<int:project_id>/label/", label_start, name="web-label-start"),
    path("projects/<int:project_id>/my-submissions/", my_submissions, name="web-my-submissions"),
    path("tasks/<int:task_id>/label/", task_label, name="web-task-label"),
]
