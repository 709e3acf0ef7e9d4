"""The labeling page: "Start labeling" goes task to task through the queue; ``/tasks/{id}/label/``
opens one task (a leased one, or one of your earlier submissions to revisit and edit).

The page is generated in the browser from the label schema (``static/web/labeling.js``); the
server hands it everything through ``json_script`` and the JS talks to the REST API.
"""

from __future__ import annotations

from typing import NamedTuple

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse

from annotator.db import hot_cursor, json_value
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


def progress_for(*, project: Project, user, mine_done: int | None = None) -> dict:
    """Done and open for the user, and for the project (tasks complete / total). ``approximate``:
    a large project's figures, up to COUNTS_CACHE_SECONDS old, "open" being the project's.
    ``mine_done``: the user's submitted count, when the caller read it already."""
    total, done = project_task_counts(project)
    if mine_done is None:
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


def guidelines_notice(*, project: Project, last: int | None) -> dict | None:
    """Set when the user's latest submission (made under guidelines version ``last``; None: no
    submission says) was made under older guidelines than the current ones."""
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


# The user's side of the task page in one statement: their annotation of the task (draft or
# submission), how many tasks of the project they submitted (the progress line) and the guideline
# version of their latest submission (the "guidelines changed" notice). Three ORM queries cost
# about 1.9 ms of CPU to build against a fraction of that to run; the count and the latest
# submission are ranges of the (project, user, status, submitted_at, id) index.
_SUBMITTED = AnnotationStatus.SUBMITTED.value
_MINE_SQL = f"""SELECT n.status, n.draft, n.result, n.prediction_id,
    (SELECT count(*) FROM annotations_annotation c
     WHERE c.project_id = %(project)s AND c.user_id = %(user)s AND c.status = '{_SUBMITTED}'),
    (SELECT g.guideline_version FROM annotations_annotation g
     WHERE g.project_id = %(project)s AND g.user_id = %(user)s AND g.status = '{_SUBMITTED}'
        AND g.guideline_version IS NOT NULL
     ORDER BY g.submitted_at DESC, g.id DESC LIMIT 1)
FROM (SELECT 1) AS one
LEFT JOIN annotations_annotation n ON n.task_id = %(task)s AND n.user_id = %(user)s"""


class Mine(NamedTuple):
    status: str | None  # None: the user has no annotation of the task
    draft: object
    result: object
    prediction_id: int | None
    done: int  # the user's submitted annotations in the project
    last_guideline_version: int | None  # of their latest submission that recorded one


def mine_for(task: Task, user) -> Mine:
    with hot_cursor() as cursor:
        cursor.execute(_MINE_SQL, {"task": task.pk, "project": task.project_id, "user": user.pk})
        status, draft, result, prediction_id, done, last = cursor.fetchone()
    return Mine(status, json_value(draft), json_value(result), prediction_id, done, last)


def _task_data(task: Task, mine: Mine) -> dict:
    data = form_data(schema=task.project.label_schema, text=task.text, title=task.article.title, payload=task.payload)
    data["task"].update(id=task.pk, source=task.article.source)
    return data | {
        "predictions": [
            {"id": p.id, "model_version": p.model_version, "score": p.score, "result": p.result}
            for p in task.predictions.order_by("-created_at", "-id")[:5]
        ],
        "draft": mine.draft,
        "submitted": mine.result if mine.status == AnnotationStatus.SUBMITTED else None,
        "submitted_prediction": mine.prediction_id,
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
    mine = mine_for(task, request.user)
    data = _task_data(task, mine)
    data["queue"] = request.GET.get("queue") == "1"
    return render(
        request,
        "web/labeling/task.html",
        {
            "project": project,
            "task": task,
            "membership": membership,
            "data": data,
            "progress": progress_for(project=project, user=request.user, mine_done=mine.done),
            "notice": guidelines_notice(project=project, last=mine.last_guideline_version),
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
