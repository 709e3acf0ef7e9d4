"""Reads for quality: consensus labels from submitted annotations, and the stored figures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from projects.annotations.models import Annotation, AnnotationStatus
from projects.core.exceptions import ValidationFailed
from projects.core.models import Project
from projects.core.schema import PAIRWISE_CHOICES
from projects.quality.consensus import Consensus, dawid_skene, majority_vote
from projects.quality.models import AnnotatorQuality, GoldAlert, QualitySettings, QualitySnapshot, TaskConsensus

CONSENSUS_FIELD_TYPES = ("choice", "pairwise")
CONSENSUS_METHODS = ("majority", "dawid_skene")


def consensus_field(project: Project, field: str | None = None) -> dict:
    """The schema field consensus is computed for: ``field`` by name, else the first choice field."""
    fields = project.label_schema.get("fields", [])
    if field is None:
        for f in fields:
            if f["type"] == "choice":
                return f
        raise ValidationFailed("This project has no choice field to build consensus labels for.", code="no_field")
    for f in fields:
        if f["name"] == field:
            if f["type"] not in CONSENSUS_FIELD_TYPES:
                raise ValidationFailed(
                    f"Consensus needs a choice or pairwise field; {field!r} is {f['type']}.",
                    fields={"field": "not a choice or pairwise field"},
                )
            return f
    raise ValidationFailed(f"{field!r} is not a field of this project.", fields={"field": "unknown field"})


def label_of(field: dict, value: Any) -> Any:
    """The hashable label an annotation result gives for ``field``; ``None`` when it gave none."""
    if value is None or value == "" or value == []:
        return None
    if field["type"] == "pairwise":
        return value.get("choice") if isinstance(value, dict) else None
    if isinstance(value, list):
        return tuple(value)
    return value


def field_labels(project: Project, field: dict, *, task_ids: Iterable[int] | None = None) -> list[tuple[int, int, Any]]:
    """``(task_id, user_id, label)`` for every submitted annotation that answers ``field``."""
    qs = Annotation.objects.filter(project=project, status=AnnotationStatus.SUBMITTED)
    if task_ids is not None:
        qs = qs.filter(task_id__in=list(task_ids))
    out = []
    for task_id, user_id, result in qs.order_by("task_id", "user_id").values_list("task_id", "user_id", "result"):
        label = label_of(field, (result or {}).get(field["name"]))
        if label is not None:
            out.append((task_id, user_id, label))
    return out


def consensus_for_tasks(
    project: Project,
    task_ids: Iterable[int] | None = None,
    *,
    method: str = "majority",
    field: str | None = None,
) -> dict[int, Consensus]:
    """``{task_id: Consensus(label, confidence)}`` for a choice (or pairwise) field.

    ``task_ids=None`` means every task with a submitted answer. Dawid–Skene is always fitted on
    the whole project (annotator confusion matrices need many items) and then restricted to
    ``task_ids``. A multi-choice answer's label is a list of options. Tasks nobody answered are
    left out.
    """
    if method not in CONSENSUS_METHODS:
        raise ValidationFailed(f"Unknown consensus method {method!r}.", fields={"method": "majority or dawid_skene"})
    f = consensus_field(project, field)
    wanted = None if task_ids is None else set(task_ids)
    if method == "majority":
        by_task: dict[int, list] = defaultdict(list)
        for task_id, _, label in field_labels(project, f, task_ids=wanted):
            by_task[task_id].append(label)
        result = majority_vote(by_task)
    else:
        if f["type"] == "pairwise":
            classes = list(PAIRWISE_CHOICES)
        else:
            classes = None if f.get("multiple") else f.get("options")
        result = dawid_skene(field_labels(project, f), classes=classes)
        if wanted is not None:
            result = {t: c for t, c in result.items() if t in wanted}
    return {
        t: Consensus(list(c.label) if isinstance(c.label, tuple) else c.label, c.confidence) for t, c in result.items()
    }


def latest_snapshot(*, project: Project) -> QualitySnapshot | None:
    return QualitySnapshot.objects.filter(project=project).order_by("-created_at", "-id").first()


def quality_overview(*, project: Project) -> dict:
    """The latest stored figures with the project's quality settings, and whether they are stale."""
    settings_row = QualitySettings.objects.filter(project=project).first() or QualitySettings(project=project)
    snapshot = latest_snapshot(project=project)
    stale = settings_row.dirty_at is not None and (
        settings_row.computed_at is None or settings_row.dirty_at >= settings_row.computed_at
    )
    return {
        "project": project.pk,
        "snapshot": snapshot.pk if snapshot else None,
        "computed_at": snapshot.created_at if snapshot else None,
        "stale": stale or snapshot is None,
        "duration_seconds": snapshot.duration_seconds if snapshot else None,
        "settings": settings_row,
        "figures": snapshot.figures if snapshot else None,
    }


def annotator_rows(*, project: Project) -> QuerySet[AnnotatorQuality]:
    snapshot = latest_snapshot(project=project)
    if snapshot is None:
        return AnnotatorQuality.objects.none()
    return AnnotatorQuality.objects.filter(snapshot=snapshot).select_related("user").order_by("user_id")


def gold_alerts(*, project: Project, only_open: bool = False) -> QuerySet[GoldAlert]:
    qs = GoldAlert.objects.filter(project=project).select_related("user")
    if only_open:
        qs = qs.filter(resolved_at__isnull=True)
    return qs.order_by("-created_at", "-id")


def adjudication_list(*, project: Project, field: str | None = None, below: float | None = None):
    """Stored consensus rows, lowest confidence first (then task id)."""
    qs = TaskConsensus.objects.filter(project=project).select_related("task")
    if field:
        qs = qs.filter(field=field)
    if below is not None:
        qs = qs.filter(confidence__lt=below)
    return qs.order_by("confidence", "task_id", "field")
