"""Progress of a project: per project, per annotator and per required skill.

Done, in progress, remaining, review backlog, and the median time per task (annotation
``lead_time``). A handful of grouped queries whatever the project size: one pass over the
tasks (per skill, summed for the project) and one per grouping of the submitted annotations
(project, annotator, skill), the median in the same pass (``percentile_cont``) on PostgreSQL
and computed in Python on SQLite.
"""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.db.models import Aggregate, Count, FloatField, Q
from django.utils import timezone

from projects.assignment import strategies
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.models import Membership, Project


class Median(Aggregate):
    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _annotation_model():
    # Annotations build on Task; reach them through the reverse relation (no upward import).
    return Task._meta.get_field("annotations").related_model


def _submitted(project: Project):
    return _annotation_model().objects.filter(project=project, status="submitted")


def _grouped(qs, key: str) -> dict:
    """{key: {"done", "review_backlog", "median_seconds"}} over submitted annotations."""
    aggregates = {"done": Count("pk"), "review_backlog": Count("pk", filter=Q(review_state="pending"))}
    if settings.IS_POSTGRES:  # the median in the same pass over the annotations
        aggregates["m"] = Median("lead_time")
    rows = qs.values(key).order_by().annotate(**aggregates)
    out = {
        r[key]: {"done": r["done"], "review_backlog": r["review_backlog"], "median_seconds": _round(r.get("m"))}
        for r in rows
    }
    if not settings.IS_POSTGRES:
        times: dict = defaultdict(list)
        for k, t in qs.values_list(key, "lead_time").iterator(chunk_size=5000):
            times[k].append(t)
        for k, values in times.items():
            out[k]["median_seconds"] = _round(strategies.median_or_none(values))
    return out


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def project_progress(*, project: Project) -> dict:
    now = timezone.now()
    tasks = Task.objects.filter(project=project)
    # One pass over the tasks, per required skill; the project's figures are their sums.
    per_skill_tasks = list(
        tasks.values("required_skill")
        .order_by("required_skill")
        .annotate(
            tasks=Count("pk"),
            completed=Count("pk", filter=Q(is_complete=True)),
            in_progress=Count("pk", filter=Q(is_complete=False) & (Q(submitted_count__gt=0) | Q(leased_count__gt=0))),
            flagged=Count("pk", filter=Q(is_flagged=True)),
        )
    )
    totals = {
        name: sum(row[name] for row in per_skill_tasks) for name in ("tasks", "completed", "in_progress", "flagged")
    }
    totals["remaining"] = totals["tasks"] - totals["completed"]
    submitted = _submitted(project)
    overall = _grouped(submitted, "project").get(project.pk, {})
    totals.update(
        annotations=overall.get("done", 0),
        review_backlog=overall.get("review_backlog", 0),
        median_seconds=overall.get("median_seconds"),
        live_leases=Assignment.objects.filter(
            project=project, status=AssignmentStatus.LEASED, expires_at__gt=now
        ).count(),
    )

    per_user = _grouped(submitted, "user")
    holds = (
        Assignment.objects.filter(project=project)
        .values("user")
        .order_by()
        .annotate(
            in_progress=Count("pk", filter=Q(status=AssignmentStatus.LEASED, expires_at__gt=now)),
            assigned=Count("pk", filter=Q(status=AssignmentStatus.ASSIGNED)),
            skipped=Count("pk", filter=Q(status=AssignmentStatus.SKIPPED)),
            escalated=Count("pk", filter=Q(status=AssignmentStatus.ESCALATED)),
        )
    )
    hold_by_user = {r["user"]: r for r in holds}
    annotators = []
    for m in Membership.objects.filter(project=project).select_related("user").order_by("user__username"):
        done = per_user.get(m.user_id, {})
        hold = hold_by_user.get(m.user_id, {})
        if not done and not hold and m.role != "annotator":
            continue
        annotators.append(
            {
                "username": m.user.username,
                "role": m.role,
                "queue_paused": m.queue_paused,
                "done": done.get("done", 0),
                "in_progress": hold.get("in_progress", 0),
                "remaining": hold.get("assigned", 0),
                "skipped": hold.get("skipped", 0),
                "escalated": hold.get("escalated", 0),
                "review_backlog": done.get("review_backlog", 0),
                "median_seconds": done.get("median_seconds"),
            }
        )

    per_skill_done = _grouped(submitted, "task__required_skill")
    skills = []
    for row in per_skill_tasks:
        done = per_skill_done.get(row["required_skill"], {})
        skills.append(
            {
                "skill": row["required_skill"],
                "tasks": row["tasks"],
                "completed": row["completed"],
                "in_progress": row["in_progress"],
                "remaining": row["tasks"] - row["completed"],
                "annotations": done.get("done", 0),
                "review_backlog": done.get("review_backlog", 0),
                "median_seconds": done.get("median_seconds"),
            }
        )
    return {"project": totals, "annotators": annotators, "skills": skills}
