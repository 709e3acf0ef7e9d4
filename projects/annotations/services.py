"""Writes on annotations: drafts and submissions. Counters move in the same transaction."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from projects.annotations import reviews, submission
from projects.annotations.models import Annotation, AnnotationStatus, Comment, ReviewState
from projects.assignment.models import AssignmentStatus, Task
from projects.core import events
from projects.core.exceptions import Conflict, NotFound, ValidationFailed
from projects.core.faults import fault_point
from projects.core.schema import validate_result

MAX_LEAD_TIME = 24 * 3600.0


def _lead_time(value: float | None) -> float:
    if value is None:
        return 0.0
    if not isinstance(value, (int, float)) or value < 0:
        raise ValidationFailed("lead_time must be a non-negative number of seconds.", fields={"lead_time": "invalid"})
    return min(float(value), MAX_LEAD_TIME)


def _check_guideline_version(current: int, version: int | None) -> int:
    """The guidelines version the annotator was shown (the page sends it); the current one by default."""
    if version is None:
        return current
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= current:
        raise ValidationFailed(
            f"guideline_version must be a version of this project's guidelines (1 to {current}).",
            fields={"guideline_version": "unknown version"},
        )
    return version


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
    """
    return _submit(
        task_id=task.pk,
        user=user,
        result=result,
        lead_time=lead_time,
        prediction_id=prediction_id,
        guideline_version=guideline_version,
        visible_only=False,
    )


def annotation_submit_visible(
    *,
    task_id: int,
    user,
    result: dict,
    lead_time: float | None = None,
    prediction_id: int | None = None,
    guideline_version: int | None = None,
) -> tuple[Annotation, bool]:
    """``annotation_submit`` for the API: the task must be one the user may work on (the rule of
    ``task_for_user``), checked by the statement that locks it; ``NotFound`` otherwise."""
    return _submit(
        task_id=task_id,
        user=user,
        result=result,
        lead_time=lead_time,
        prediction_id=prediction_id,
        guideline_version=guideline_version,
        visible_only=True,
    )


@transaction.atomic
def _submit(
    *,
    task_id: int,
    user,
    result,
    lead_time: float | None,
    prediction_id: int | None,
    guideline_version: int | None,
    visible_only: bool,
) -> tuple[Annotation, bool]:
    """Cost: the task lock and one read of everything the rules need (one round trip), then one
    statement that writes the annotation, the assignment and the task counters
    (``projects.annotations.submission``)."""
    now = timezone.now()
    locked = submission.lock_and_read(
        task_id=task_id, user=user, prediction_id=prediction_id, now=now, visible_only=visible_only
    )
    if locked is None:
        raise NotFound("Task not found.")
    normalized = validate_result(locked.label_schema, result, text=locked.text, payload=locked.payload)
    lead = _lead_time(lead_time)
    if prediction_id is not None and not locked.prediction_found:
        raise ValidationFailed("That prediction does not belong to this task.", fields={"prediction": "not found"})
    guideline_version = _check_guideline_version(locked.guidelines_version, guideline_version)
    my_status = locked.my_status
    first_submission = locked.annotation_status != AnnotationStatus.SUBMITTED
    if first_submission:
        mine = my_status == AssignmentStatus.SUBMITTED or (
            my_status == AssignmentStatus.LEASED and locked.my_expires_at is not None and locked.my_expires_at > now
        )
        if not mine and locked.held >= locked.overlap:
            raise Conflict("This task already has all the annotations it needs.", code="task_full")
    # None: a sampled review policy draws by the annotation's id, known once it is inserted.
    state = reviews.review_state_on_submit(
        policy=locked.review_policy,
        sample_percent=locked.review_sample_percent,
        project_id=locked.project_id,
        previous=locked.review_state or ReviewState.NONE,
        annotation_id=locked.annotation_id,
    )
    count = locked.submitted_count + 1 if first_submission else None
    written = submission.write(
        locked=locked,
        task_id=task_id,
        user_id=user.pk,
        result=normalized,
        state=state or ReviewState.NONE,
        lead=lead,
        max_lead=MAX_LEAD_TIME,
        prediction_id=prediction_id,
        guideline_version=guideline_version,
        now=now,
        write_assignment=my_status != AssignmentStatus.SUBMITTED,
        leased_delta=-1 if my_status == AssignmentStatus.LEASED else 0,
        count=count,
        complete=count is not None and count >= locked.overlap,
    )
    if written is None:  # a reviewer's verdict made it final after the read
        raise reviews.already_reviewed()
    annotation_id, review_state, lead_total, prediction, created_at = written
    if state is None and review_state == ReviewState.NONE:
        state = reviews.review_state_on_submit(
            policy=locked.review_policy,
            sample_percent=locked.review_sample_percent,
            project_id=locked.project_id,
            previous=ReviewState.NONE,
            annotation_id=annotation_id,
        )
        if state != ReviewState.NONE:
            submission.mark_for_review(annotation_id)
            review_state = state
    announced = [
        ("annotation.submitted", {"annotation_id": annotation_id, "task_id": task_id, "user": user.username,
                                  "first": first_submission}),
    ]  # fmt: skip
    if count is not None and count == locked.overlap:
        announced.insert(0, ("task.completed", {"task_id": task_id}))
    events.emit_all(announced, project_id=locked.project_id)
    fault_point("annotation.submit")
    annotation = Annotation.from_db(
        None,
        _ANNOTATION_FIELDS,
        (annotation_id, locked.project_id, task_id, user.pk, normalized, None, AnnotationStatus.SUBMITTED,
         review_state, None, lead_total, prediction, guideline_version, created_at, now, now),
    )  # fmt: skip
    return annotation, first_submission


_ANNOTATION_FIELDS = [field.attname for field in Annotation._meta.concrete_fields]


MAX_COMMENT_LENGTH = 5000


def comment_create(*, task: Task, user, text: str) -> Comment:
    """A note or question on a task, for reviewers and managers (the caller checked access)."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("A comment needs some text.", fields={"text": "required"})
    if len(text) > MAX_COMMENT_LENGTH:
        raise ValidationFailed(f"A comment is at most {MAX_COMMENT_LENGTH} characters.", fields={"text": "too long"})
    return Comment.objects.create(task=task, user=user, text=text)
