"""The task manager page (Label Studio's "data manager"): filter, search, sort, select, act.

Reads through ``projects.assignment.manager`` and writes through ``projects.assignment.bulk``,
the same code as the API, so the page and ``/api/v1/projects/{id}/tasks/`` always agree.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from annotator.api import CappedCountPaginator
from projects.assignment import bulk, manager, selectors, strategies
from projects.core.exceptions import DomainError
from projects.core.models import Role
from projects.web.views.common import project_for_page

PAGE_SIZE = 50
FILTER_KEYS = tuple(manager.TaskFilter.base_filters)
COLUMNS = (
    ("id", "ID"),
    (None, "Article"),
    (None, "Status"),
    ("priority", "Priority"),
    ("required_skill", "Skill"),
    ("submitted_count", "Done"),
    (None, "Annotators"),
    ("uncertainty", "Uncertainty"),
    ("agreement", "Agreement"),
    ("is_gold", "Gold"),
    ("is_flagged", "Flag"),
)


def _filters_of(query: QueryDict) -> dict[str, str]:
    return {k: query[k] for k in FILTER_KEYS if query.get(k, "").strip()}


def _sort_links(query: QueryDict) -> list[dict]:
    current = query.get("ordering", "")
    links = []
    for key, label in COLUMNS:
        if key is None:
            links.append({"label": label})
            continue
        descending_now = current == f"-{key}"
        target = key if descending_now else f"-{key}"
        params = {**_filters_of(query), "ordering": target}
        arrow = "▼" if current == f"-{key}" else ("▲" if current == key else "")
        links.append({"label": label, "href": "?" + urlencode(params), "arrow": arrow, "key": key})
    return links


@login_required
def tasks_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    params = request.GET
    try:
        filtered = manager.tasks_filtered(project=project, params=params)
        tasks = manager.tasks_for_manager(project=project, params=params, filtered=filtered)
    except DomainError as exc:
        messages.error(request, f"{exc.message} {' '.join(f'{k}: {v}' for k, v in exc.fields.items())}")
        params = {}
        filtered = manager.tasks_filtered(project=project, params=params)
        tasks = manager.tasks_for_manager(project=project, params=params, filtered=filtered)
    ids = manager.task_ids_for_manager(project=project, params=params, filtered=filtered)
    page = CappedCountPaginator(tasks, PAGE_SIZE, ids=ids).get_page(request.GET.get("page"))
    labels = dict(manager.STATUS_CHOICES)
    rows = []
    for t in page.object_list:
        status = strategies.task_status(
            is_complete=t.is_complete, submitted_count=t.submitted_count, leased_count=t.leased_count
        )
        rows.append((t, status, labels[status]))
    filters = _filters_of(request.GET)
    ordering = {"ordering": request.GET["ordering"]} if request.GET.get("ordering") else {}
    base_query = urlencode({**filters, **ordering})
    skills = selectors.required_skills(project_id=project.pk)
    return render(
        request,
        "web/tasks/tasks.html",
        {
            "project": project,
            "membership": membership,
            "page": page,
            "rows": rows,
            "filters": filters,
            "filter_query": urlencode(filters),
            "base_query": base_query,
            "columns": _sort_links(request.GET),
            "status_choices": manager.STATUS_CHOICES,
            "skills": list(skills),
            "members": bulk.annotator_usernames(project=project),
            "actions": [(a, a.replace("_", " ")) for a in bulk.ACTIONS],
        },
    )


@login_required
@require_POST
def tasks_bulk_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    back_query = request.POST.get("back", "")
    back = reverse("web-tasks", args=[project.pk]) + (f"?{back_query}" if back_query else "")
    try:
        if request.POST.get("scope") == "filter":
            data = {"filter": _filters_of(QueryDict(request.POST.get("filter_query", "")))}
        else:
            ids = request.POST.getlist("task_ids")
            if not ids:
                messages.error(request, "Select at least one task, or apply to every task matching the filters.")
                return redirect(back)
            data = {"task_ids": [int(i) for i in ids]}
        tasks, described = manager.selected_tasks(project, data)
        priority = request.POST.get("priority", "").strip()
        result = bulk.tasks_bulk_apply(
            project=project,
            actor=request.user,
            action=request.POST.get("action", ""),
            tasks=tasks,
            usernames=[u for u in request.POST.get("usernames", "").replace(",", " ").split() if u],
            priority=int(priority) if priority.lstrip("-").isdigit() else None,
            skill=request.POST.get("skill", ""),
            confirm=request.POST.get("confirm") == "on",
            described_as=described,
        )
    except ValueError:
        messages.error(request, "Task ids must be numbers.")
        return redirect(back)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    action = result["action"].replace("_", " ")
    messages.success(request, f"{action}: {result['matched']} task(s) matched, {result['changed']} changed.")
    return redirect(back)


urlpatterns = [
    path("projects/<int:project_id>/tasks/", tasks_page, name="web-tasks"),
    path("projects/<int:project_id>/tasks/bulk/", tasks_bulk_page, name="web-tasks-bulk"),
]
