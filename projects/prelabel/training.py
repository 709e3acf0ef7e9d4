"""Training the project's own model, on demand or every N new submitted annotations."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from projects.annotations.models import Annotation, AnnotationStatus
from projects.core import dispatch
from projects.core.memo import project_memo
from projects.core.models import Project
from projects.core.services import audit_log
from projects.prelabel import jobs
from projects.prelabel.labelers.sklearn_model import save_artefact, train_artefact
from projects.prelabel.models import Labeler, LabelerKind, TrainedModel

logger = logging.getLogger(__name__)

# A training job that has not cleared its flag after this long is assumed dead.
STALE_TRAINING = timedelta(hours=1)


def _examples(project: Project) -> list[tuple[str, dict]]:
    annotations = (
        Annotation.objects.filter(project=project, status=AnnotationStatus.SUBMITTED)
        .select_related("task__article")
        .only("result", "task__start_offset", "task__end_offset", "task__article__text")
        .order_by("id")
    )
    return [(a.task.text, a.result or {}) for a in annotations.iterator(chunk_size=2000)]


def model_train(*, project: Project, actor=None) -> TrainedModel:
    """Train a new version of the project's scikit-learn model on its submitted annotations."""
    examples = _examples(project)
    artefact, info = train_artefact(project.label_schema, examples)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        version = (TrainedModel.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0) + 1
        relative = f"prelabel/project-{project.pk}/sklearn-{version}-{secrets.token_hex(4)}.joblib"
        sha256 = save_artefact(artefact, Path(settings.MEDIA_ROOT) / relative)
        model = TrainedModel.objects.create(
            project=project,
            version=version,
            path=relative,
            sha256=sha256,
            annotation_count=len(examples),
            info=info,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit_log(actor=actor, action="prelabel.trained", project=project, target=model, data={"version": version})
    return model


def model_train_request(*, project: Project, actor, labeler: Labeler | None = None) -> bool:
    """Queue a training job unless one is already queued (debounce). Returns whether it queued."""
    now = timezone.now()
    if labeler is not None:
        claimed = Labeler.objects.filter(pk=labeler.pk).filter(training_queued_at__isnull=True).update(
            training_queued_at=now
        ) or Labeler.objects.filter(pk=labeler.pk, training_queued_at__lt=now - STALE_TRAINING).update(
            training_queued_at=now
        )
        if not claimed:
            return False
    queue = getattr(settings, "PRELABEL_QUEUE", "") or None
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    labeler_id = labeler.pk if labeler is not None else None
    dispatch.enqueue(jobs.model_train_job, project.pk, actor_id, labeler_id, queue=queue)
    return True


RETRAIN_MEMO = "retrain-labelers"


def _retraining_labelers(project_id: int) -> list[tuple[int, int]]:
    """(labeler id, retrain_every) of the project's active trained-model labelers that retrain."""
    return [
        (pk, config["retrain_every"])
        for pk, config in Labeler.objects.filter(project_id=project_id, kind=LabelerKind.SKLEARN, is_active=True)
        .order_by("id")
        .values_list("id", "config")
        if (config or {}).get("retrain_every")
    ]


# How many first submissions a project has had since its last trained model, kept in Django's
# cache (Redis when configured: one INCR per submission) so that a submission does not count the
# project's annotations, which reads an index entry per annotation (about 14 ms per 100,000 on
# PostgreSQL). The figure is taken from the database when missing, when it reaches the
# labeler's ``retrain_every`` (the trigger always decides on an exact count) and at least every
# RETRAIN_RESYNC_SECONDS, which also catches annotations that arrive without a submission
# event (imports, deletions).
RETRAIN_RESYNC_SECONDS = 60


def _retrain_pending_key(project_id: int) -> str:
    return f"retrain-pending:{project_id}"


def retrain_on_submissions(name: str, project_id: int, data: dict) -> None:
    """Event handler: retrain when ``retrain_every`` new annotations arrived since the last model.

    It runs on every submission, so which labelers retrain is memoized per project
    (``projects.prelabel.apps`` drops the memo when a labeler changes): no query when none do;
    and the submissions since the last model are counted in the cache (see above).
    """
    if name != "annotation.submitted" or not data.get("first", True):
        return
    labelers = project_memo(RETRAIN_MEMO, project_id, lambda: _retraining_labelers(project_id))
    if not labelers:
        return
    every = min(n for _, n in labelers)
    key = _retrain_pending_key(project_id)
    try:
        pending = cache.incr(key)
    except Exception:  # noqa: BLE001 - ValueError: not counted yet or the resync window ended; else Redis is down
        pending = None  # either way, count in the database
    if pending is not None and pending < every:
        return
    last = TrainedModel.objects.filter(project_id=project_id).values_list("annotation_count", flat=True).first() or 0
    submitted = Annotation.objects.filter(project_id=project_id, status=AnnotationStatus.SUBMITTED).count()
    behind = submitted - last
    if behind >= every:
        labeler = Labeler.objects.filter(pk=labelers[0][0], is_active=True).first()
        if labeler is not None:
            model_train_request(project=Project.objects.get(pk=project_id), actor=None, labeler=labeler)
        behind = 0  # check again after ``every`` more submissions (or at the resync), not on each one
    try:
        cache.set(key, behind, RETRAIN_RESYNC_SECONDS)
    except Exception:  # noqa: BLE001
        pass
