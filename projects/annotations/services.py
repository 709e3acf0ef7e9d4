"""Writes on annotations: drafts and submissions. Counters move in the same transaction."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from projects.annotations import reviews
from projects.annotations.models import Annotation, AnnotationStatus, Comment, ReviewState
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.assignment.services import assignment_record_submission, holding_q, task_lock_for_submission
from projects.core import events
from projects.core.exceptions import Conflict, ValidationFailed
from projects.core.faults import fault_point
from projects.core.schema import validate_result

MAX_LEAD_TIME = 24 * 3600.0


def _lead_time(value: float | None) -> float:
    if value is None:
        return 0.0
    if not isinstance(value, (int, float)) or value < 0:
        raise ValidationFailed("lead_time must be a non-negative number of seconds.", fields={"lead_time": "invalid"})
    return min(float(value), MAX_LEAD_TIME)


def _check_guideline_version(task: Task, version: int | None) -> int:
    """The guidelines version the annotator was shown (the page sends it); the current one by default."""
    current = task.project.guidelines_version
    if version is None:
        return current
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= current:
        raise ValidationFailed(
            f"guideline_version must be a version of this project's guidelines (1 to {current}).",
            fields={"guideline_version": "unknown version"},
        )
    return version


def _check_prediction(task: Task, prediction_id: int | None) -> int | None:
    if prediction_id is None:
        return None
    if not task.predictions.filter(pk=prediction_id).exists():
        raise ValidationFailed("That prediction does not belong to this task.", fields={"prediction": "not found"})
    return prediction_id


@transaction.atomic
def annotation_save_draft(*, task: Task, user, result: dict, lead_time: float | None = None) -> Annotation:
    """Autosave the user's working copy; a submitted result is left as it is."""
    draft = validate_result(task.project.label_schema, result, text=task.text, payload=task.payload, draft=True)
    annotation, _ = Annotation.objects.select_for_update().get_or_create(
        task=task, user=user, defaults={"project_id": task.project_id}
    )
    annotation.draft = draft
    annotation.lead_time = min(annotation.lead_time + _lead_time(lead_time), MAX_LEAD_TIME)
    annotation.save(update_fields=["draft", "lead_time", "updated_at"])
    return annotation


@transaction.atomic
def annotation_submit(
    *,
    task: Task,
    user,
    result: dict,
    lead_time: float | None = None,
    prediction_id: int | None = None,
    guideline_version: int | None = None,
) -> tuple[Annotation, bool]:
    """Validate and store the user's result. Returns (annotation, created).

    Submitting again updates the same annotation. A user without a live lease may submit only
    while the task still has a free slot, so overlap N means at most N annotators.

    Cost, first submission: lock the task (reading the user's assignment with it), lock the
    annotation, write it, the assignment and the task counters: five statements.
    """
    project = task.project
    normalized = validate_result(project.label_schema, result, text=task.text, payload=task.payload)
    lead = _lead_time(lead_time)
    prediction_id = _check_prediction(task, prediction_id)
    guideline_version = _check_guideline_version(task, guideline_version)
    now = timezone.now()
    locked = task_lock_for_submission(task=task, user=user)
    my_status, my_expires_at = locked["my_status"], locked["my_expires_at"]
    annotation = Annotation.objects.select_for_update().filter(task=task, user=user).first()
    first_submission = annotation is None or annotation.status != AnnotationStatus.SUBMITTED
    if first_submission:
        mine = my_status == AssignmentStatus.SUBMITTED or (
            my_status == AssignmentStatus.LEASED and my_expires_at is not None and my_expires_at > now
        )
        if not mine:
            held = Assignment.objects.filter(holding_q(now), task=task).count()
            if held >= project.overlap:
                raise Conflict("This task already has all the annotations it needs.", code="task_full")
    if annotation is None:
        annotation = Annotation(task=task, user=user, project_id=task.project_id)
    # None: a sampled review policy draws by the annotation's id, known once it is inserted.
    state = reviews.review_state_on_submit(
        project=project, previous=annotation.review_state, annotation_id=annotation.pk
    )
    annotation.review_state = state or ReviewState.NONE
    annotation.reviewed_result = None
    annotation.result = normalized
    annotation.draft = None
    annotation.status = AnnotationStatus.SUBMITTED
    annotation.submitted_at = now
    annotation.lead_time = min(annotation.lead_time + lead, MAX_LEAD_TIME)
    annotation.guideline_version = guideline_version
    if prediction_id is not None:
        annotation.prediction_id = prediction_id
    annotation.save()
    if state is None:
        state = reviews.review_state_on_submit(project=project, previous=ReviewState.NONE, annotation_id=annotation.pk)
        if state != ReviewState.NONE:
            Annotation.objects.filter(pk=annotation.pk).update(review_state=state)
            annotation.review_state = state
    leased_delta = assignment_record_submission(task=task, user=user, previous=my_status, now=now)
    counters = {}
    if leased_delta:
        counters["leased_count"] = F("leased_count") + leased_delta
    if first_submission:
        # The task row is locked above, so reading then writing the counter is safe.
        count = locked["submitted_count"] + 1
        counters.update(submitted_count=count, is_complete=count >= project.overlap)
    if counters:
        Task.objects.filter(pk=task.pk).update(**counters)
    if first_submission and locked["submitted_count"] + 1 == project.overlap:
        events.emit("task.completed", project_id=project.pk, data={"task_id": task.pk})
    events.emit(
        "annotation.submitted",
        project_id=project.pk,
        data={"annotation_id": annotation.pk, "task_id": task.pk, "user": user.username, "first": first_submission},
    )
    fault_point("annotation.submit")
    return annotation, first_submission


MAX_COMMENT_LENGTH = 5000


def comment_create(*, task: Task, user, text: str) -> Comment:
    """A note or question on a task, for reviewers and managers (the caller checked access)."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("A comment needs some text.", fields={"text": "required"})
    if len(text) > MAX_COMMENT_LENGTH:
        raise ValidationFailed(f"A comment is at most {MAX_COMMENT_LENGTH} characters.", fields={"text": "too long"})
    return Comment.objects.create(task=task, user=user, text=text)
