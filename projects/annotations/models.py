"""Annotations (a user's result for a task), reviews of them, and comments on tasks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from projects.assignment.models import Task
from projects.core.models import Project


class AnnotationStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"


class ReviewState(models.TextChoices):
    NONE = "", "Not reviewed"
    PENDING = "pending", "Waiting for review"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    FIXED = "fixed", "Fixed by reviewer"


class Annotation(models.Model):
    """One user's result on one task. A resubmission updates this row; it is never duplicated."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="annotations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations")
    result = models.JSONField(default=dict, blank=True, help_text="The last submitted result.")
    # The working copy autosaved while labeling; never overwrites a submitted result by itself.
    draft = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=AnnotationStatus.choices, default=AnnotationStatus.DRAFT)
    review_state = models.CharField(max_length=16, choices=ReviewState.choices, default=ReviewState.NONE, blank=True)
    # The label after review: the result itself when accepted, the reviewer's correction when fixed;
    # null while unreviewed, pending or rejected (see projects.annotations.reviews).
    reviewed_result = models.JSONField(null=True, blank=True)
    lead_time = models.FloatField(default=0.0, help_text="Seconds spent on the task, summed over visits.")
    prediction = models.ForeignKey(
        "prelabel.Prediction", null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    guideline_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=["task", "user"], name="annotation_task_user_unique")]
        indexes = [
            models.Index(fields=["project", "status", "task"], name="annotation_export_idx"),
            # A user's annotations in a project, and "My submissions" newest first (a backward
            # scan of the last two columns), so that page reads 50 rows, not the whole history.
            models.Index(fields=["project", "user", "status", "submitted_at", "id"], name="annotation_user_idx"),
            models.Index(fields=["project", "review_state"], name="annotation_review_idx"),
            # The reviewer queue: a project's pending submissions, oldest first (partial: only the
            # backlog is indexed, so it stays small however many annotations are done).
            models.Index(
                fields=["project", "submitted_at", "id"],
                name="annotation_review_queue_idx",
                condition=Q(status="submitted", review_state="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} by {self.user_id} on task {self.task_id}"


class Verdict(models.TextChoices):
    ACCEPT = "accept", "Accept"
    REJECT = "reject", "Reject"
    FIX = "fix", "Fix"


class Review(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews")
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    corrected_result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("annotation", "id")
        indexes = [models.Index(fields=["reviewer", "created_at"], name="review_reviewer_idx")]

    def __str__(self) -> str:
        return f"{self.verdict} on {self.annotation_id}"


class Comment(models.Model):
    """A note or question on a task, for reviewers and managers (or a reply to one)."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="comments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    is_resolved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("task", "id")

    def __str__(self) -> str:
        return f"comment {self.pk} on task {self.task_id}"


class ReviewClaim(models.Model):
    """A reviewer holds a pending annotation for a while, so two reviewers are not handed the same one."""

    annotation = models.OneToOneField(Annotation, on_delete=models.CASCADE, related_name="review_claim")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ("id",)
        indexes = [models.Index(fields=["reviewer", "expires_at"], name="review_claim_reviewer_idx")]

    def __str__(self) -> str:
        return f"claim on {self.annotation_id} by {self.reviewer_id}"


class LabelSource(models.TextChoices):
    PICK = "pick", "An annotation picked by an adjudicator"
    MERGE = "merge", "A result merged by an adjudicator"


class TaskLabel(models.Model):
    """The adjudicated label of a task whose annotations disagreed (overlap > 1).

    Read it through ``projects.annotations.selectors.reviewed_label_for_tasks``, which also falls
    back to reviewed annotations.
    """

    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="label")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="task_labels")
    result = models.JSONField()
    source = models.CharField(max_length=8, choices=LabelSource.choices)
    annotation = models.ForeignKey(
        Annotation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="The picked one."
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("task",)
        indexes = [models.Index(fields=["project", "task"], name="task_label_project_idx")]

    def __str__(self) -> str:
        return f"label of task {self.task_id} ({self.source})"
