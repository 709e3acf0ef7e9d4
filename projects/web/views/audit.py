"""Audit page: the project's trail of who changed what, with the same filters as the API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.http import urlencode

from projects.core import selectors
from projects.core.exceptions import ValidationFailed
from projects.core.models import Role
from projects.web.views.common import project_for_page

PAGE_SIZE = 50


def _details(data: dict) -> list[tuple[str, str]]:
    """The event's data as (key, text) pairs; ``{"from": a, "to": b}`` reads as "a → b"."""

    def text(value) -> str:
        if isinstance(value, dict) and set(value) >= {"from", "to"}:
            rest = {k: v for k, v in value.items() if k not in ("from", "to")}
            extra = f" ({', '.join(f'{k}: {text(v)}' for k, v in rest.items())})" if rest else ""
            return f"{text(value['from'])} → {text(value['to'])}{extra}"
        if isinstance(value, dict):
            return ", ".join(f"{k}: {text(v)}" for k, v in value.items()) or "{}"
        if isinstance(value, list):
            return ", ".join(text(v) for v in value[:20]) + (f" … ({len(value)} in all)" if len(value) > 20 else "")
        return "–" if value is None else str(value)

    data = dict(data or {})
    change = [("change", text({"from": data.pop("from"), "to": data.pop("to")}))] if {"from", "to"} <= set(data) else []
    return change + [(key, text(value)) for key, value in data.items()]


@login_required
def audit_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    filters = {k: request.GET.get(k, "").strip() for k in ("action", "actor", "since")}
    error = ""
    try:
        since = selectors.parse_since(filters["since"])
    except ValidationFailed as exc:
        since, error = None, exc.message
    events = selectors.audit_events_for(project=project, action=filters["action"], actor=filters["actor"], since=since)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(event, _details(event.data)) for event in page.object_list]
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "web/audit/audit.html",
        {
            "project": project,
            "membership": membership,
            "page": page,
            "rows": rows,
            "filters": filters,
            "error": error,
            "query": query,
        },
    )


urlpatterns = [path("projects/<int:project_id>/audit/", audit_page, name="web-audit")]
