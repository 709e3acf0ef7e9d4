"""Reads for pre-labeling: which tasks a run covers, run errors, and how predictions were used."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from projects.annotations.models import Annotation, AnnotationStatus
from projects.assignment.models import Task
from projects.core.exceptions import ValidationFailed
from projects.core.models import Project
from projects.prelabel.models import PrelabelChunk, PrelabelRun

MAX_RUN_ERRORS = 500
FILTER_KEYS = {"unlabeled", "skill", "id_from", "id_to"}


def normalize_task_filter(value: Any) -> dict:
    """``"all"``, ``"unlabeled"``, or ``{"unlabeled": bool, "skill": str, "id_from": int, "id_to": int}``."""
    if value in (None, "", "all"):
        return {}
    if value == "unlabeled":
        return {"unlabeled": True}
    if not isinstance(value, dict) or set(value) - FILTER_KEYS - {"kind"}:
        raise ValidationFailed(
            'filter must be "all", "unlabeled" or an object with unlabeled, skill, id_from, id_to.',
            fields={"filter": "invalid"},
        )
    out: dict[str, Any] = {}
    kind = value.get("kind")
    if kind not in (None, "all", "unlabeled", "skill", "range"):
        raise ValidationFailed("filter.kind must be all, unlabeled, skill or range.", fields={"filter.kind": "bad"})
    if value.get("unlabeled") or kind == "unlabeled":
        out["unlabeled"] = True
    if "skill" in value:
        if not isinstance(value["skill"], str) or len(value["skill"]) > 64:
            raise ValidationFailed("filter.skill must be a skill name.", fields={"filter.skill": "bad"})
        out["skill"] = value["skill"]
    for key in ("id_from", "id_to"):
        if value.get(key) is not None:
            if not isinstance(value[key], int) or isinstance(value[key], bool) or value[key] < 0:
                raise ValidationFailed(f"filter.{key} must be a task id.", fields={f"filter.{key}": "bad"})
            out[key] = value[key]
    if "id_from" in out and "id_to" in out and out["id_from"] > out["id_to"]:
        raise ValidationFailed("filter.id_from must not be above id_to.", fields={"filter.id_from": "bad"})
    return out


def task_ids_for_filter(*, project: Project, task_filter: dict) -> QuerySet:
    tasks = Task.objects.filter(project=project)
    if task_filter.get("unlabeled"):
        tasks = tasks.filter(submitted_count=0)
    if "skill" in task_filter:
        tasks = tasks.filter(required_skill=task_filter["skill"])
    if "id_from" in task_filter:
        tasks = tasks.filter(pk__gte=task_filter["id_from"])
    if "id_to" in task_filter:
        tasks = tasks.filter(pk__lte=task_filter["id_to"])
    return tasks.order_by("id").values_list("id", flat=True)


def runs_of(*, project: Project) -> QuerySet[PrelabelRun]:
    return PrelabelRun.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")


def run_errors(*, run: PrelabelRun, limit: int = MAX_RUN_ERRORS) -> list[dict]:
    """Per-task errors of the run, in chunk order, at most ``limit``."""
    out: list[dict] = []
    for errors in (
        PrelabelChunk.objects.filter(run=run).exclude(errors=[]).order_by("index").values_list("errors", flat=True)
    ):
        out += errors[: limit - len(out)]
        if len(out) >= limit:
            break
    return out


# --- use of predictions ---------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ""


def _span_keys(value: Any) -> set[tuple]:
    return {(s.get("start"), s.get("end"), s.get("label")) for s in value or [] if isinstance(s, dict)}


def compare_field(field: dict, predicted: Any, submitted: Any) -> str:
    """How a submitted value treats a predicted one: accepted (equal), edited (partly kept) or discarded."""
    if _empty(submitted):
        return "discarded"
    ftype = field["type"]
    if ftype == "spans":
        p, s = _span_keys(predicted), _span_keys(submitted)
        return "accepted" if p == s else ("edited" if p & s else "discarded")
    if predicted == submitted:
        return "accepted"
    if ftype == "choice" and field.get("multiple"):
        return "edited" if set(predicted or []) & set(submitted or []) else "discarded"
    if ftype == "rating" and isinstance(predicted, dict) and isinstance(submitted, dict):
        return "edited" if any(submitted.get(k) == v for k, v in predicted.items()) else "discarded"
    if ftype == "text" and isinstance(predicted, str) and isinstance(submitted, str):
        return "edited" if submitted.strip() else "discarded"
    return "discarded"


def prediction_acceptance(project: Project) -> list[dict]:
    """Per model version: submitted annotations that started from one of its predictions, and how
    many were accepted unchanged, edited or discarded (overall and per field), with the precision
    and recall of predicted spans against the submitted ones."""
    fields = {f["name"]: f for f in project.label_schema.get("fields", [])}
    stats: dict[str, dict] = {}
    rows = (
        Annotation.objects.filter(project=project, status=AnnotationStatus.SUBMITTED, prediction__isnull=False)
        .order_by("prediction__model_version", "id")
        .values_list("prediction__model_version", "prediction__result", "result")
    )
    for version, predicted, submitted in rows.iterator(chunk_size=2000):
        entry = stats.setdefault(
            version,
            {
                "model_version": version,
                "annotations": 0,
                "accepted": 0,
                "edited": 0,
                "discarded": 0,
                "fields": {},
                "spans": {"predicted": 0, "submitted": 0, "matched": 0},
            },
        )
        predicted, submitted = predicted or {}, submitted or {}
        outcomes = []
        for name, value in predicted.items():
            field = fields.get(name)
            if field is None or _empty(value):
                continue
            outcome = compare_field(field, value, submitted.get(name))
            outcomes.append(outcome)
            counts = entry["fields"].setdefault(name, {"accepted": 0, "edited": 0, "discarded": 0})
            counts[outcome] += 1
        for name, field in fields.items():
            if field["type"] == "spans":
                p, s = _span_keys(predicted.get(name)), _span_keys(submitted.get(name))
                entry["spans"]["predicted"] += len(p)
                entry["spans"]["submitted"] += len(s)
                entry["spans"]["matched"] += len(p & s)
        if not outcomes:
            continue  # an empty pre-label proposed nothing to accept or discard
        entry["annotations"] += 1
        added = any(not _empty(v) and _empty(predicted.get(k)) for k, v in submitted.items())
        if all(o == "accepted" for o in outcomes) and not added:
            entry["accepted"] += 1
        elif all(o == "discarded" for o in outcomes):
            entry["discarded"] += 1
        else:
            entry["edited"] += 1
    out = []
    for entry in stats.values():
        n, spans = entry["annotations"], entry["spans"]
        entry["accepted_rate"] = round(entry["accepted"] / n, 4) if n else None
        spans["precision"] = round(spans["matched"] / spans["predicted"], 4) if spans["predicted"] else None
        spans["recall"] = round(spans["matched"] / spans["submitted"], 4) if spans["submitted"] else None
        out.append(entry)
    return out
