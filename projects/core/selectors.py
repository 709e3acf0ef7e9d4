"""Reads about projects that depend on the user or cross relations."""

from __future__ import annotations

from datetime import datetime, time

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from projects.core.exceptions import ValidationFailed
from projects.core.models import AuditEvent, Membership, Project


def _count(relation: str, **filters) -> Coalesce:
    # The related model is reached through Project's reverse relation, so core does not import
    # the apps that build on it.
    model = Project._meta.get_field(relation).related_model
    sub = (
        model.objects.filter(project=OuterRef("pk"), **filters)
        .order_by()
        .values("project")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(sub, output_field=IntegerField()), 0)


def projects_visible_to(*, user) -> QuerySet[Project]:
    """Projects the user is a member of (all of them for superusers), with live counts."""
    return (
        Project.objects.visible_to(user)
        .annotate(
            article_count=_count("articles"),
            task_count=_count("tasks"),
            completed_task_count=_count("tasks", is_complete=True),
            annotation_count=_count("annotations", status="submitted"),
        )
        .order_by("id")
    )


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
