"""Review workflow: which submissions need review, the reviewer queue, verdicts, adjudication.

Rules:
- On submit, ``review_state_on_submit`` decides the annotation's ``review_state`` from the project's
  review policy: ``none`` leaves it unreviewed, ``all`` makes it ``pending``, ``sample`` makes
  ``review_sample_percent`` % of annotations pending. The sample is deterministic (a hash of the
  project and annotation ids), so the same annotation is always in or out of it.
- A rejected annotation goes back to its annotator; resubmitting it makes it ``pending`` again,
  whatever the policy. An accepted or fixed annotation is final: resubmitting it is a conflict.
- Reviewers never review their own annotations, and never adjudicate a task they annotated.
- ``reviewed_result`` on an annotation is its label after review (the result when accepted, the
  reviewer's correction when fixed); a task's adjudicated label is a ``TaskLabel``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from projects.annotations.models import (
    Annotation,
    AnnotationStatus,
    LabelSource,
    Review,
    ReviewClaim,
    ReviewState,
    TaskLabel,
    Verdict,
)
from projects.assignment.models import Task
from projects.core import events
from projects.core.exceptions import Conflict, PermissionDenied, ValidationFailed
from projects.core.models import Project, ReviewPolicy
from projects.core.schema import ResultError, validate_result
from projects.core.services import audit_log

REVIEW_CLAIM_MINUTES = 15
CANDIDATE_BATCH = 20
MAX_COMMENT_LENGTH = 10_000
FINAL_STATES = (ReviewState.ACCEPTED, ReviewState.FIXED)


# --- pure rules -------------------------------------------------------------------------------


def in_review_sample(*, project_id: int, annotation_id: int, percent: int) -> bool:
    """Whether the annotation falls in a ``percent`` % review sample; stable for the same ids."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"review:{project_id}:{annotation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def disagreeing_fields(results: list[dict]) -> list[str]:
    """Field names whose values are not all equal across the results (exact comparison of the
    normalized values; a missing field counts as empty)."""
    if len(results) < 2:
        return []
    names = sorted({name for result in results for name in result})
    return [name for name in names if len({_canonical(r.get(name)) for r in results}) > 1]


def effective_result(annotation: Annotation) -> dict:
    """The annotation's label as it stands: the reviewed result when there is one."""
    return annotation.reviewed_result if annotation.reviewed_result is not None else annotation.result


# --- submit hook ------------------------------------------------------------------------------


def already_reviewed() -> Conflict:
    return Conflict("This annotation has already been reviewed and can no longer be changed.", code="already_reviewed")


def review_state_on_submit(
    *, policy: str, sample_percent: int, project_id: int, previous: str, annotation_id: int | None
) -> str | None:
    """The review state an annotation takes when submitted (``previous``: its state before), under
    the project's review ``policy``.

    Returns None when the project samples reviews and the annotation has no id yet (the sample
    is drawn by id): ask again once it is saved.
    """
    if previous in FINAL_STATES:
        raise already_reviewed()
    if previous in (ReviewState.REJECTED, ReviewState.PENDING):
        return ReviewState.PENDING
    if policy == ReviewPolicy.ALL:
        return ReviewState.PENDING
    if policy != ReviewPolicy.SAMPLE:
        return ReviewState.NONE
    if annotation_id is None:
        return None
    wanted = in_review_sample(project_id=project_id, annotation_id=annotation_id, percent=sample_percent)
    return ReviewState.PENDING if wanted else ReviewState.NONE


# --- reviewer queue ---------------------------------------------------------------------------


def pending_for_reviewer(*, project: Project, reviewer, now):
    return (
        Annotation.objects.filter(project=project, status=AnnotationStatus.SUBMITTED, review_state=ReviewState.PENDING)
        .exclude(user=reviewer)
        .exclude(Q(review_claim__expires_at__gt=now) & ~Q(review_claim__reviewer=reviewer))
        .order_by("submitted_at", "id")
    )


def review_next_for_reviewer(*, project: Project, reviewer) -> Annotation | None:
    """The pending annotation the reviewer already holds, or claim the oldest free one.

    A claim lasts ``REVIEW_CLAIM_MINUTES``; other reviewers are not handed it meanwhile.
    """
    now = timezone.now()
    with transaction.atomic():
        held = (
            Annotation.objects.filter(
                project=project,
                review_state=ReviewState.PENDING,
                review_claim__reviewer=reviewer,
                review_claim__expires_at__gt=now,
            )
            .order_by("submitted_at", "id")
            .first()
        )
        if held is not None:
            return held
        candidate_ids = list(
            pending_for_reviewer(project=project, reviewer=reviewer, now=now).values_list("id", flat=True)[
                :CANDIDATE_BATCH
            ]
        )
        for annotation_id in candidate_ids:
            locked = Annotation.objects.filter(pk=annotation_id, review_state=ReviewState.PENDING)
            if settings.IS_POSTGRES:
                locked = locked.select_for_update(skip_locked=True)
            annotation = locked.first()
            if annotation is None:
                continue
            claim = ReviewClaim.objects.filter(annotation=annotation).first()
            if claim is not None and claim.reviewer_id != reviewer.pk and claim.expires_at > now:
                continue
            # The annotation's row lock (PostgreSQL) or the write transaction (SQLite) keeps
            # other claims of it out until commit, so the claim just read is still the one to
            # renew (update_or_create would read it again inside two savepoints).
            expires = now + timedelta(minutes=REVIEW_CLAIM_MINUTES)
            if claim is None:
                ReviewClaim.objects.create(annotation=annotation, reviewer=reviewer, expires_at=expires)
            else:
                claim.reviewer, claim.expires_at = reviewer, expires
                claim.save(update_fields=["reviewer", "expires_at"])
            return annotation
    return None


# --- verdicts ---------------------------------------------------------------------------------


def _check_comment(comment: str) -> str:
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_LENGTH:
        raise ValidationFailed(
            f"The comment must be text of at most {MAX_COMMENT_LENGTH} characters.", fields={"comment": "too long"}
        )
    return comment.strip()


def _validated(task: Task, result, where: str) -> dict:
    try:
        return validate_result(task.project.label_schema, result, text=task.text, payload=task.payload)
    except ResultError as exc:
        raise ResultError(exc.message, fields={where: exc.fields}) from None


@transaction.atomic
def review_submit(
    *, annotation: Annotation, reviewer, verdict: str, comment: str = "", corrected_result: dict | None = None
) -> Review:
    """Record a verdict: accept, reject (back to the annotator with the comment) or fix (the
    corrected result becomes the reviewed label). Any submitted annotation may be reviewed except
    one that waits for its annotator to resubmit; a later verdict supersedes an earlier one."""
    annotation = (
        Annotation.objects.select_for_update()
        .select_related("task__article", "task__project", "user")
        .get(pk=annotation.pk)
    )
    if annotation.user_id == reviewer.pk:
        raise PermissionDenied("You cannot review your own annotation.", code="own_annotation")
    if verdict not in Verdict.values:
        raise ValidationFailed(
            f"Unknown verdict {verdict!r}.", fields={"verdict": f"one of {', '.join(Verdict.values)}"}
        )
    if annotation.status != AnnotationStatus.SUBMITTED:
        raise Conflict("Only submitted annotations can be reviewed.", code="not_submitted")
    if annotation.review_state == ReviewState.REJECTED:
        raise Conflict(
            "This annotation was rejected and waits for its annotator to resubmit it.", code="awaiting_resubmission"
        )
    comment = _check_comment(comment)
    corrected = None
    if verdict == Verdict.FIX:
        if corrected_result is None:
            raise ValidationFailed("A fix needs the corrected result.", fields={"corrected_result": "required"})
        corrected = _validated(annotation.task, corrected_result, "corrected_result")
    elif corrected_result is not None:
        raise ValidationFailed(
            "Only a fix carries a corrected result.", fields={"corrected_result": "only with verdict fix"}
        )
    if verdict == Verdict.REJECT and not comment:
        raise ValidationFailed(
            "Tell the annotator what to change: a rejection needs a comment.", fields={"comment": "required"}
        )
    previous = annotation.review_state
    review = Review.objects.create(
        annotation=annotation, reviewer=reviewer, verdict=verdict, comment=comment, corrected_result=corrected
    )
    if verdict == Verdict.ACCEPT:
        annotation.review_state, annotation.reviewed_result = ReviewState.ACCEPTED, annotation.result
    elif verdict == Verdict.FIX:
        annotation.review_state, annotation.reviewed_result = ReviewState.FIXED, corrected
    else:
        annotation.review_state, annotation.reviewed_result = ReviewState.REJECTED, None
    annotation.save(update_fields=["review_state", "reviewed_result", "updated_at"])
    ReviewClaim.objects.filter(annotation=annotation).delete()
    data = {
        "review_id": review.pk,
        "annotation_id": annotation.pk,
        "task_id": annotation.task_id,
        "annotator": annotation.user.username,
        "verdict": verdict,
        "from": previous,
        "to": annotation.review_state,
    }
    audit_log(actor=reviewer, action=f"review.{verdict}", project=annotation.task.project, target=annotation, data=data)
    events.emit("annotation.reviewed", project_id=annotation.project_id, data=data | {"reviewer": reviewer.username})
    return review


# --- adjudication -----------------------------------------------------------------------------


@transaction.atomic
def task_adjudicate(
    *, task: Task, actor, pick: int | None = None, result: dict | None = None, comment: str = ""
) -> TaskLabel:
    """Set the task's label: pick one of its submitted annotations, or give a merged result.
    Adjudicating again replaces the label."""
    task = Task.objects.select_for_update().select_related("article", "project").get(pk=task.pk)
    if (pick is None) == (result is None):
        raise ValidationFailed(
            "Give either pick (an annotation id) or a merged result.", fields={"pick": "either pick or result"}
        )
    if task.annotations.filter(user=actor, status=AnnotationStatus.SUBMITTED).exists():
        raise PermissionDenied("You annotated this task; another reviewer must adjudicate it.", code="own_task")
    comment = _check_comment(comment)
    picked = None
    if pick is not None:
        picked = (
            task.annotations.filter(pk=pick, status=AnnotationStatus.SUBMITTED)
            .exclude(review_state=ReviewState.REJECTED)
            .first()
        )
        if picked is None:
            raise ValidationFailed(
                "Pick a submitted, not rejected annotation of this task.", fields={"pick": "not an annotation here"}
            )
        label_result, source = effective_result(picked), LabelSource.PICK
    else:
        label_result, source = _validated(task, result, "result"), LabelSource.MERGE
    label, created = TaskLabel.objects.update_or_create(
        task=task,
        defaults={
            "project_id": task.project_id,
            "result": label_result,
            "source": source,
            "annotation": picked,
            "decided_by": actor,
            "comment": comment,
        },
    )
    data = {
        "task_id": task.pk,
        "source": source,
        "annotation_id": picked.pk if picked else None,
        "replaced": not created,
    }
    audit_log(actor=actor, action="task.adjudicate", project=task.project, target=label, data=data)
    events.emit("task.adjudicated", project_id=task.project_id, data=data | {"by": actor.username})
    return label
