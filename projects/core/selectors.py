"""Reads about projects that depend on the user or cross relations."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time

from django.core.cache import cache
from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from projects.core.exceptions import ValidationFailed
from projects.core.models import AuditEvent, Membership, Project

# A project's four counts read an index entry per article, task or annotation: about 60 ms for
# a project of 100,000 tasks on PostgreSQL, on every home page, project page and project API
# read. In projects of COUNTS_EXACT_BELOW tasks or articles or more they are kept in Django's
# cache (Redis when configured, so shared by every worker) for COUNTS_CACHE_SECONDS; smaller
# projects are counted on every read (a few milliseconds), so their figures are always exact.
COUNTS_EXACT_BELOW = 20_000
COUNTS_CACHE_SECONDS = 15
COUNT_FIELDS = ("article_count", "task_count", "completed_task_count", "annotation_count")


def _counts_key(project_id: int) -> str:
    return f"project-counts:{project_id}"


def _grouped_counts(relation: str, project_ids: list[int], **filters) -> dict[int, int]:
    # The related model is reached through Project's reverse relation, so core does not import
    # the apps that build on it.
    model = Project._meta.get_field(relation).related_model
    rows = (
        model.objects.filter(project_id__in=project_ids, **filters)
        .order_by()
        .values("project_id")
        .annotate(n=Count("*"))
        .values_list("project_id", "n")
    )
    return dict(rows)


def attach_counts(projects: Iterable[Project]) -> list[Project]:
    """Set ``article_count``, ``task_count``, ``completed_task_count`` and ``annotation_count`` on
    each project: four grouped statements for all of them, large projects' from the cache."""
    projects = list(projects)
    if not projects:
        return projects
    keys = {p.pk: _counts_key(p.pk) for p in projects}
    try:
        cached = cache.get_many(list(keys.values()))
    except Exception:  # noqa: BLE001 - the cache (Redis) is down: count
        cached = {}
    missing = [pk for pk, key in keys.items() if key not in cached]
    found = {pk: cached[key] for pk, key in keys.items() if key in cached}
    if missing:
        counted = [
            _grouped_counts("articles", missing),
            _grouped_counts("tasks", missing),
            _grouped_counts("tasks", missing, is_complete=True),
            _grouped_counts("annotations", missing, status="submitted"),
        ]
        large = {}
        for pk in missing:
            found[pk] = tuple(counts.get(pk, 0) for counts in counted)
            if found[pk][0] >= COUNTS_EXACT_BELOW or found[pk][1] >= COUNTS_EXACT_BELOW:
                large[keys[pk]] = found[pk]
        if large:
            try:
                cache.set_many(large, COUNTS_CACHE_SECONDS)
            except Exception:  # noqa: BLE001
                pass
    for project in projects:
        for name, value in zip(COUNT_FIELDS, found[project.pk], strict=True):
            setattr(project, name, value)
    return projects


def projects_visible_to(*, user) -> QuerySet[Project]:
    """Projects the user is a member of (all of them for superusers). Their counts are set by
    ``attach_counts`` on the ones actually shown."""
    return Project.objects.visible_to(user).order_by("id")


def members_of(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user", "user__annotator_profile").order_by("id")


def parse_since(raw: str | None) -> datetime | None:
    """An ISO date or date-time (a bare date means its midnight, in the server's time zone)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
        if value is None and (day := parse_date(raw)) is not None:
            value = datetime.combine(day, time.min)
    except ValueError:
        value = None
    if value is None:
        raise ValidationFailed(
            f"since must be an ISO date or date-time, not {raw[:40]!r}.", fields={"since": "e.g. 2026-01-31"}
        )
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def audit_events_for(
    *, project: Project, action: str = "", actor: str = "", since: datetime | None = None
) -> QuerySet[AuditEvent]:
    """The project's audit trail, newest first. ``action`` is exact when it holds a dot
    (``member.update``), else a family (``member`` matches every ``member.*``); ``actor`` is a username."""
    events = AuditEvent.objects.filter(project=project).select_related("actor")
    action = (action or "").strip()
    if action:
        events = events.filter(action=action) if "." in action else events.filter(action__startswith=f"{action}.")
    if (actor or "").strip():
        events = events.filter(actor__username=actor.strip())
    if since is not None:
        events = events.filter(created_at__gte=since)
    return events.order_by("-created_at", "-id")
