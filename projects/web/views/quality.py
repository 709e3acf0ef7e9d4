"""Quality dashboard: stored figures as charts and tables; managers can recompute and resolve alerts.

The page reads the latest snapshot (``projects.quality.selectors``); it never computes metrics.
Reviewers and up see it; managers and admins also act on it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from projects.core.models import Role
from projects.quality import selectors, services
from projects.quality.jobs import quality_recompute_job
from projects.quality.models import GoldAlert
from projects.web.views.common import project_for_page

ADJUDICATION_ROWS = 20


def _chart_data(figures: dict | None, threshold: float) -> dict:
    """The subset of figures the charts draw (passed to JS with json_script)."""
    if not figures:
        return {}
    return {
        "progress": figures.get("progress", []),
        "throughput": [{"label": r["username"], "value": r["submitted"]} for r in figures.get("throughput", [])],
        "lead_time": figures.get("lead_time", {}).get("histogram", []),
        "agreement": [
            {
                "label": f["name"],
                "value": f.get("value"),
                "low": (f.get("alpha_ci") or [None, None])[0],
                "high": (f.get("alpha_ci") or [None, None])[1],
                "measure": f.get("measure", ""),
            }
            for f in figures.get("fields", [])
        ],
        "gold_annotators": [
            {"label": r["username"], "value": r["accuracy"], "low": r["low"], "high": r["high"], "n": r["answers"]}
            for r in figures.get("gold", {}).get("per_annotator", [])
        ],
        "gold_skills": figures.get("gold", {}).get("per_skill", []),
        "prelabel": [
            {"label": r["model_version"], "value": r.get("accepted_rate"), "n": r.get("annotations")}
            for r in figures.get("prelabel", [])
        ],
        "threshold": threshold,
    }


@login_required
def quality_dashboard(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.REVIEWER)
    overview = selectors.quality_overview(project=project)
    figures = overview["figures"]
    return render(
        request,
        "web/quality/dashboard.html",
        {
            "project": project,
            "membership": membership,
            "is_manager": membership.has_role(Role.MANAGER),
            "overview": overview,
            "figures": figures,
            "fields": (figures or {}).get("fields", []),
            "annotators": selectors.annotator_rows(project=project),
            "alerts": selectors.gold_alerts(project=project, only_open=True)[:50],
            "adjudication": selectors.adjudication_list(project=project)[:ADJUDICATION_ROWS],
            "chart_data": _chart_data(figures, overview["settings"].gold_threshold),
        },
    )


@login_required
@require_POST
def quality_recompute(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    transaction.on_commit(lambda: quality_recompute_job.delay(project.pk, force=True))
    messages.success(request, "Recompute queued; the figures update when it is done.")
    return redirect("web-quality", project_id=project.pk)


@login_required
@require_POST
def quality_alert_resolve(request: HttpRequest, project_id: int, alert_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    alert = get_object_or_404(GoldAlert, pk=alert_id, project=project)
    resume = request.POST.get("resume_queue") == "1"
    services.gold_alert_resolve(alert=alert, actor=request.user, resume_queue=resume)
    messages.success(request, f"Alert for {alert.user.username} resolved" + (", queue resumed." if resume else "."))
    return redirect("web-quality", project_id=project.pk)


urlpatterns = [
    path("projects/<int:project_id>/quality/", quality_dashboard, name="web-quality"),
    path("projects/<int:project_id>/quality/recompute/", quality_recompute, name="web-quality-recompute"),
    path(
        "projects/<int:project_id>/quality/alerts/<int:alert_id>/resolve/",
        quality_alert_resolve,
        name="web-quality-alert-resolve",
    ),
]
