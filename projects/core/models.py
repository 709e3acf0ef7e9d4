"""Projects, their members and roles, annotator skills, API tokens and the audit trail."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    REVIEWER = "reviewer", "Reviewer"
    ANNOTATOR = "annotator", "Annotator"


# Higher rank includes the rights of every lower rank.
ROLE_RANK: dict[str, int] = {Role.ANNOTATOR: 1, Role.REVIEWER: 2, Role.MANAGER: 3, Role.ADMIN: 4}


class AssignmentPolicy(models.TextChoices):
    OPEN = "open", "Open queue"
    SKILL = "skill", "Skill-routed"
    MANUAL = "manual", "Manual"


class SkillFallback(models.TextChoices):
    NEVER = "never", "Never"
    AFTER_WAIT = "after_wait", "After a wait"
    IMMEDIATE = "immediate", "Immediately"


class ReviewPolicy(models.TextChoices):
    NONE = "none", "No review"
    SAMPLE = "sample", "Sample"
    ALL = "all", "All"


class QueueOrder(models.TextChoices):
    PRIORITY = "priority", "Priority, then import order"
    UNCERTAINTY = "uncertainty", "Priority, then model uncertainty"


class ProjectQuerySet(models.QuerySet):
    def visible_to(self, user) -> ProjectQuerySet:
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(memberships__user=user)


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    guidelines_version = models.PositiveIntegerField(default=1)
    label_schema = models.JSONField(default=dict)
    schema_version = models.PositiveIntegerField(default=1)
    overlap = models.PositiveSmallIntegerField(default=1, help_text="Annotations wanted per task.")
    assignment_policy = models.CharField(max_length=16, choices=AssignmentPolicy.choices, default=AssignmentPolicy.OPEN)
    skill_fallback = models.CharField(max_length=16, choices=SkillFallback.choices, default=SkillFallback.NEVER)
    skill_fallback_minutes = models.PositiveIntegerField(default=60)
    review_policy = models.CharField(max_length=16, choices=ReviewPolicy.choices, default=ReviewPolicy.NONE)
    review_sample_percent = models.PositiveSmallIntegerField(default=10)
    gold_ratio = models.FloatField(default=0.0, help_text="Share of next-task answers that are gold tasks.")
    lease_minutes = models.PositiveIntegerField(default=30)
    queue_order = models.CharField(max_length=16, choices=QueueOrder.choices, default=QueueOrder.PRIORITY)
    annotators_see_others = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ("id",)
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(
                condition=Q(gold_ratio__gte=0) & Q(gold_ratio__lte=1), name="project_gold_ratio_range"
            ),
            models.CheckConstraint(condition=Q(review_sample_percent__lte=100), name="project_review_sample_range"),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="project_lease_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class GuidelineVersion(models.Model):
    """Every edit of a project's guidelines, so an annotation can name the text its annotator saw."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guideline_versions")
    version = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("project", "version")
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="guideline_version_unique")]

    def __str__(self) -> str:
        return f"{self.project_id} v{self.version}"


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    # Set when quality monitoring pauses this annotator's queue (gold accuracy below threshold).
    queue_paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("project", "id")
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]
        indexes = [models.Index(fields=["user", "project"], name="membership_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class SkillLevel(models.TextChoices):
    NONE = "none", "None"
    GENERALIST = "generalist", "Generalist"
    EXPERT = "expert", "Expert"


class AnnotatorProfile(models.Model):
    """Skills by domain (``{"coding": "expert", "medicine": "none"}``) and languages."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator_profile")
    skills = models.JSONField(default=dict, blank=True)
    languages = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"

    def level(self, domain: str) -> str:
        return self.skills.get(domain, SkillLevel.NONE)


class TokenScope(models.TextChoices):
    FULL = "full", "Full access"
    READ = "read", "Read only"
    EXPORT = "export", "Read and export"


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """An API token. Only its SHA-256 is stored; the key is shown once, at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=8, help_text="First characters of the key, to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.FULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "id")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class AuditEvent(models.Model):
    """Who changed what: member changes, assignments, reviews, exports, settings."""

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["project", "-created_at"], name="audit_project_idx")]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id}"


class PendingJob(models.Model):
    """A job that could not be sent because the broker (Redis) was unreachable: the outbox.

    ``projects.core.dispatch`` writes it; the ``core.dispatch_pending`` job (Celery beat, and every
    worker at start-up) sends it once the broker answers again, then deletes the row. Jobs are
    idempotent, so a row sent twice does no harm.
    """

    name = models.CharField(max_length=200, help_text="Celery job name, e.g. imports.run.")
    args = models.JSONField(default=list, blank=True)
    queue = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True, help_text="Why the last send failed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.name}{tuple(self.args)} (waiting for the broker)"
