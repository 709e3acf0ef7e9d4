"""The task manager's reads: filters, search and whitelisted ordering over a project's tasks.

One FilterSet serves the list endpoint, the bulk endpoint's ``filter`` object and the web page,
so "the tasks I see" and "the tasks a bulk action touches" can never differ.
"""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Substr

from projects.assignment import strategies
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.assignment.search import task_search_q
from projects.core.exceptions import ValidationFailed
from projects.core.models import Project

STATUS_CHOICES = (("open", "Open"), ("in_progress", "In progress"), ("completed", "Completed"))

# Public ordering keys -> Task fields. Nothing else is accepted (no lookups into other tables).
ORDERING_FIELDS = {
    "id": "id",
    "priority": "priority",
    "submitted_count": "submitted_count",
    "skipped_count": "skipped_count",
    "uncertainty": "uncertainty",
    "agreement": "agreement",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "required_skill": "required_skill",
    "is_gold": "is_gold",
    "is_flagged": "is_flagged",
}

SNIPPET_CHARS = 160


def _prediction_model():
    # Prediction builds on Task (prelabel -> assignment); reach it through the reverse relation.
    return Task._meta.get_field("predictions").related_model


class TaskFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=STATUS_CHOICES, method="filter_status")
    annotator = django_filters.CharFilter(method="filter_annotator", help_text="Username holding or done the task.")
    required_skill = django_filters.CharFilter()
    is_gold = django_filters.BooleanFilter()
    is_flagged = django_filters.BooleanFilter()
    flag_domain = django_filters.CharFilter()
    has_prediction = django_filters.BooleanFilter(method="filter_has_prediction")
    agreement_below = django_filters.NumberFilter(field_name="agreement", lookup_expr="lt")
    id_from = django_filters.NumberFilter(field_name="id", lookup_expr="gte")
    id_to = django_filters.NumberFilter(field_name="id", lookup_expr="lte")
    search = django_filters.CharFilter(
        method="filter_search", help_text="Full-text search over article title and text."
    )

    class Meta:
        model = Task
        fields: list[str] = []

    def __init__(self, *args, project: Project | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

    def filter_status(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        if value == "completed":
            return queryset.filter(is_complete=True)
        busy = queryset.filter(is_complete=False)
        if value == "open":
            return busy.filter(submitted_count=0, leased_count=0)
        return busy.exclude(submitted_count=0, leased_count=0)

    def filter_annotator(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        worked = Assignment.objects.filter(task=OuterRef("pk"), user__username=value).exclude(
            status=AssignmentStatus.EXPIRED
        )
        return queryset.filter(Exists(worked))

    def filter_has_prediction(self, queryset: QuerySet[Task], name: str, value: bool) -> QuerySet[Task]:
        predicted = Exists(_prediction_model().objects.filter(task=OuterRef("pk")))
        return queryset.filter(predicted) if value else queryset.exclude(predicted)

    def filter_search(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        # Declared last, so ``queryset`` carries every other filter: the search's plan is chosen
        # on the list's own tasks (see ``task_search_q``).
        value = value.strip()
        if not value:
            return queryset
        project_id = self.project.pk if self.project is not None else None
        return queryset.filter(task_search_q(value, project_id=project_id, tasks=queryset))


def tasks_filtered(*, project: Project, params) -> QuerySet[Task]:
    """The project's tasks narrowed by the task manager filters; 400 on an invalid value."""
    filterset = TaskFilter(data=params, queryset=Task.objects.filter(project=project), project=project)
    if not filterset.is_valid():
        errors = {k: " ".join(str(e) for e in v) for k, v in filterset.errors.items()}
        raise ValidationFailed("Invalid filter.", fields=errors)
    return filterset.qs


def ordering_terms(raw: str | None) -> list[str]:
    terms, rejected = strategies.parse_ordering(raw or "", ORDERING_FIELDS)
    if rejected:
        raise ValidationFailed(
            f"Cannot order by {', '.join(rejected)}.",
            fields={"ordering": f"allowed: {', '.join(ORDERING_FIELDS)} (prefix - for descending)"},
        )
    if not any(t.lstrip("-") == "id" for t in terms):
        # The tie-breaker follows the last key's direction, so an index on (project, key, id)
        # serves "-key" by walking backwards instead of sorting.
        terms.append("-id" if terms and terms[-1].startswith("-") else "id")
    return terms


def tasks_for_manager(*, project: Project, params, filtered: QuerySet[Task] | None = None) -> QuerySet[Task]:
    """Filtered, ordered tasks with what a table row shows: no per-row queries (assignments prefetched).

    ``filtered``: ``tasks_filtered(project=project, params=params)`` when the caller already has it
    (a search probes the list once per filtering; see ``task_search_q``)."""
    holders = (
        Assignment.objects.exclude(status=AssignmentStatus.EXPIRED)
        .select_related("user")
        .only("id", "task_id", "status", "user__username")
        .order_by("id")
    )
    if filtered is None:
        filtered = tasks_filtered(project=project, params=params)
    return (
        filtered.select_related("article")
        .only(
            *(f.name for f in Task._meta.concrete_fields if f.name not in ("payload", "gold_answer")),
            "article__id",
            "article__title",
            "article__external_id",
        )
        .annotate(snippet=Substr("article__text", 1, SNIPPET_CHARS))
        .prefetch_related(Prefetch("assignments", queryset=holders, to_attr="holders"))
        .order_by(*ordering_terms(params.get("ordering")))
    )


def task_ids_for_manager(*, project: Project, params, filtered: QuerySet[Task] | None = None) -> QuerySet:
    """The same list as ``tasks_for_manager``, as bare ids (no joins): for counting and for
    finding a page deep in the list with an index-only walk."""
    if filtered is None:
        filtered = tasks_filtered(project=project, params=params)
    return filtered.order_by(*ordering_terms(params.get("ordering"))).values_list("pk", flat=True)


def selected_tasks(project, data: dict):
    """The tasks a bulk request names: ids (all must be in the project), id ranges, or a filter."""
    tasks = Task.objects.filter(project=project)
    if "task_ids" in data:
        ids = sorted(set(data["task_ids"]))
        found = set(tasks.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValidationFailed(
                f"{len(missing)} task id(s) are not in this project.", fields={"task_ids": str(missing[:20])}
            )
        return tasks.filter(pk__in=ids), {"task_ids": len(ids)}
    if "ranges" in data:
        q = Q()
        for low, high in data["ranges"]:
            if low > high:
                raise ValidationFailed("A range runs from low to high.", fields={"ranges": f"[{low}, {high}]"})
            q |= Q(pk__gte=low, pk__lte=high)
        return tasks.filter(q), {"ranges": data["ranges"]}
    params = {k: str(v) for k, v in data["filter"].items()}
    unknown = set(params) - set(TaskFilter.base_filters)
    if unknown:
        raise ValidationFailed(f"Unknown filter(s): {', '.join(sorted(unknown))}.", fields={"filter": "unknown"})
    return tasks_filtered(project=project, params=params), {"filter": params}
