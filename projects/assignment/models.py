"""Tasks (units of annotation work) and assignments (who holds which task, until when)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from projects.core.models import Project
from projects.documents.models import Article


class TaskQuerySet(models.QuerySet):
    def for_project(self, project: Project) -> TaskQuerySet:
        return self.filter(project=project)


class Task(models.Model):
    """One unit of work on an article: the whole text, or the segment ``[start_offset, end_offset)``.

    Span offsets in annotations are code-point offsets into ``task.text`` (the segment), so a
    task is self-contained for labeling and export.
    """

    # No single-column indexes on the two keys: task_project_id_idx (project, id) and the unique
    # (article, segment_index) start with them and serve every lookup by either (cascades too),
    # and each index costs every imported task an insert.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks", db_index=False)
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="tasks", db_index=False)
    segment_index = models.PositiveIntegerField(default=0)
    start_offset = models.PositiveIntegerField(null=True, blank=True)
    end_offset = models.PositiveIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="Model responses to rate, correct or compare.")
    required_skill = models.CharField(max_length=64, blank=True)
    priority = models.IntegerField(default=0)
    is_gold = models.BooleanField(default=False)
    gold_answer = models.JSONField(null=True, blank=True)
    # Counters kept in step with annotations by the services that write them.
    submitted_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    # Assignments in status "leased" (live or past expiry until ``leases_expire`` flips them).
    # ``submitted_count + leased_count < overlap`` finds tasks with a free slot from the task row
    # alone, so the queue never counts assignments per candidate.
    leased_count = models.PositiveIntegerField(default=0)
    is_complete = models.BooleanField(default=False, help_text="submitted_count has reached the project's overlap")
    # Escalation: an annotator flagged this task as needing another domain's expertise, or unsafe.
    is_flagged = models.BooleanField(default=False)
    flag_domain = models.CharField(max_length=64, blank=True)
    flag_reason = models.TextField(blank=True)
    flag_unsafe = models.BooleanField(default=False)
    flagged_at = models.DateTimeField(null=True, blank=True)
    # Lowest prediction margin (active learning orders by it, lowest first); null without predictions.
    uncertainty = models.FloatField(null=True, blank=True)
    agreement = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=["article", "segment_index"], name="task_segment_unique"),
            models.CheckConstraint(
                condition=Q(start_offset__isnull=True) | Q(end_offset__gte=models.F("start_offset")),
                name="task_segment_range",
            ),
        ]
        indexes = [
            # The queue scans open tasks of a project in queue order (partial: completed tasks drop out).
            models.Index(fields=["project", "-priority", "id"], name="task_queue_idx", condition=Q(is_complete=False)),
            models.Index(
                fields=["project", "-priority", "uncertainty", "id"],
                name="task_queue_unc_idx",
                condition=Q(is_complete=False),
            ),
            models.Index(
                fields=["project", "required_skill", "-priority", "id"],
                name="task_skill_idx",
                condition=Q(is_complete=False),
            ),
            models.Index(fields=["project", "flag_domain"], name="task_flag_idx", condition=Q(is_flagged=True)),
            models.Index(fields=["project", "is_gold"], name="task_gold_idx"),
            # Task manager filters and sorts (a descending sort walks these backwards). The list's
            # default order is id: without (project, id) the planner walks the primary key across
            # every project's tasks.
            models.Index(fields=["project", "id"], name="task_project_id_idx"),
            models.Index(fields=["project", "uncertainty", "id"], name="task_uncertainty_idx"),
            models.Index(fields=["project", "priority", "id"], name="task_priority_idx"),
            models.Index(fields=["project", "required_skill", "id"], name="task_manager_skill_idx"),
            models.Index(fields=["project", "id"], name="task_done_idx", condition=Q(is_complete=True)),
        ]

    def __str__(self) -> str:
        return f"task {self.pk}"

    @property
    def text(self) -> str:
        full = self.article.text
        if self.start_offset is None:
            return full
        return full[self.start_offset : self.end_offset]


class AssignmentStatus(models.TextChoices):
    ASSIGNED = "assigned", "Assigned by a manager"
    LEASED = "leased", "In progress (leased)"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Lease expired"
    ESCALATED = "escalated", "Escalated to another domain"


# Statuses that hold one of the task's ``overlap`` slots.
SLOT_HOLDING = (AssignmentStatus.LEASED, AssignmentStatus.SUBMITTED)


class Assignment(models.Model):
    """A user's claim on a task. One row per (task, user); a lease expires so abandoned work returns."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED)
    leased_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=["task", "user"], name="assignment_task_user_unique")]
        indexes = [
            models.Index(fields=["project", "user", "status"], name="assignment_user_idx"),
            models.Index(fields=["task", "status"], name="assignment_task_idx"),
            models.Index(fields=["status", "expires_at"], name="assignment_expiry_idx"),
            # The lazy expiry check on every next-task call: live and stale leases of one project.
            models.Index(fields=["project", "expires_at"], name="assignment_lease_idx", condition=Q(status="leased")),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on task {self.task_id} ({self.status})"
