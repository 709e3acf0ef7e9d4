"""Reads about projects that depend on the user or cross relations."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from projects.core.models import Membership, Project


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
