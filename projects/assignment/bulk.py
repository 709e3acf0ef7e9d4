"""Task manager writes: manual assignment and bulk actions over a set of tasks.

Each runs as set-based UPDATE/INSERT statements (no per-task round trips) in one transaction
and leaves an audit event naming the actor, the action and the tasks (ids, or the count and
the filter when there are many).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, QuerySet

from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.exceptions import ValidationFailed
from projects.core.models import Membership, Project
from projects.core.services import audit_log

User = get_user_model()

ACTIONS = ("assign", "unassign", "set_priority", "require_skill", "mark_gold", "unmark_gold", "clear_flag", "delete")
MAX_ASSIGNMENTS = 200_000
CHUNK = 5_000
AUDIT_IDS = 1_000
# A manager's assignment replaces these; live leases and submissions are left alone.
REASSIGNABLE = (AssignmentStatus.EXPIRED, AssignmentStatus.SKIPPED, AssignmentStatus.ESCALATED)


def members_by_username(*, project: Project, usernames: list[str]) -> list:
    """Users of the project with these usernames; 400 naming any that are not members."""
    wanted = sorted(set(usernames))
    if not wanted:
        raise ValidationFailed("Name at least one annotator.", fields={"usernames": "required"})
    users = list(User.objects.filter(username__in=wanted, memberships__project=project).order_by("username"))
    missing = sorted(set(wanted) - {u.username for u in users})
    if missing:
        raise ValidationFailed(
            f"Not members of this project: {', '.join(missing)}.", fields={"usernames": ", ".join(missing)}
        )
    return users


def _chunks(ids: list[int]):
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def tasks_assign(*, project: Project, actor, task_ids: list[int], users: list) -> int:
    """Assign tasks to named annotators (manual routing); returns assignments created or renewed.

    An assigned task comes first in that annotator's queue, in every routing policy, while it
    has a free slot.
    """
    if len(task_ids) * len(users) > MAX_ASSIGNMENTS:
        raise ValidationFailed(
            f"At most {MAX_ASSIGNMENTS} assignments per request ({len(task_ids)} tasks x {len(users)} users).",
            fields={"task_ids": "too many"},
        )
    changed = 0
    for user in users:
        for chunk in _chunks(task_ids):
            existing = dict(Assignment.objects.filter(task_id__in=chunk, user=user).values_list("task_id", "status"))
            renew = [tid for tid, status in existing.items() if status in REASSIGNABLE]
            changed += Assignment.objects.filter(task_id__in=renew, user=user).update(
                status=AssignmentStatus.ASSIGNED, assigned_by=actor, expires_at=None
            )
            new = [
                Assignment(project=project, task_id=tid, user=user, status=AssignmentStatus.ASSIGNED, assigned_by=actor)
                for tid in chunk
                if tid not in existing
            ]
            Assignment.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
            changed += len(new)
    return changed


def tasks_unassign(*, task_ids: list[int], users: list | None) -> int:
    """Withdraw manager assignments not yet started (leases and submissions stay)."""
    removed = 0
    for chunk in _chunks(task_ids):
        rows = Assignment.objects.filter(task_id__in=chunk, status=AssignmentStatus.ASSIGNED)
        if users:
            rows = rows.filter(user__in=users)
        removed += rows.delete()[0]
    return removed


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(f"{name} must be an integer from {low} to {high}.", fields={name: "invalid"})
    return value


@transaction.atomic
def tasks_bulk_apply(
    *,
    project: Project,
    actor,
    action: str,
    tasks: QuerySet[Task],
    usernames: list[str] | None = None,
    priority: int | None = None,
    skill: str | None = None,
    confirm: bool = False,
    described_as: dict | None = None,
) -> dict:
    """Apply one bulk action to ``tasks`` (already limited to the project). Returns counts."""
    if action not in ACTIONS:
        raise ValidationFailed(f"Unknown action {action!r}.", fields={"action": f"one of {', '.join(ACTIONS)}"})
    if action == "delete" and confirm is not True:
        raise ValidationFailed(
            "Deleting tasks also deletes their annotations; send confirm: true.", fields={"confirm": "required"}
        )
    tasks = tasks.filter(project=project).order_by()
    task_ids = list(tasks.values_list("pk", flat=True))
    data: dict[str, Any] = {"count": len(task_ids)}
    data["task_ids" if len(task_ids) <= AUDIT_IDS else "filter"] = (
        task_ids if len(task_ids) <= AUDIT_IDS else (described_as or {})
    )
    by_ids = Task.objects.filter(project=project)
    changed = 0
    if action == "assign":
        users = members_by_username(project=project, usernames=usernames or [])
        data["usernames"] = [u.username for u in users]
        changed = tasks_assign(project=project, actor=actor, task_ids=task_ids, users=users)
    elif action == "unassign":
        users = members_by_username(project=project, usernames=usernames) if usernames else None
        data["usernames"] = [u.username for u in users] if users else "all"
        changed = tasks_unassign(task_ids=task_ids, users=users)
    elif action == "delete":
        for chunk in _chunks(task_ids):
            changed += by_ids.filter(pk__in=chunk).delete()[1].get(Task._meta.label, 0)
    else:
        values: dict[str, Any]
        if action == "set_priority":
            values = {"priority": _int(priority, "priority", -1_000_000, 1_000_000)}
        elif action == "require_skill":
            skill = (skill or "").strip()
            if len(skill) > 64:
                raise ValidationFailed("A skill is at most 64 characters.", fields={"skill": "too long"})
            values = {"required_skill": skill}
        elif action == "mark_gold":
            values = {"is_gold": True}
        elif action == "unmark_gold":
            values = {"is_gold": False}
        else:  # clear_flag
            values = {"is_flagged": False, "flag_domain": "", "flag_reason": "", "flag_unsafe": False}
        data.update({k: v for k, v in values.items() if k in ("priority", "required_skill")})
        if action in ("set_priority", "require_skill", "mark_gold", "unmark_gold"):
            # old -> new for the audit trail: how many tasks held each previous value.
            column = next(iter(values))
            chosen = by_ids.filter(pk__in=tasks.values("pk"))
            before = chosen.values(column).annotate(n=Count("pk")).order_by(column)[:50]
            data["from"] = {str(row[column]): row["n"] for row in before}
            data["to"] = values[column]
        for chunk in _chunks(task_ids):
            changed += by_ids.filter(pk__in=chunk).update(**values)
    audit_log(actor=actor, action=f"tasks.{action}", project=project, data={**data, "changed": changed})
    return {"action": action, "matched": len(task_ids), "changed": changed}


def annotator_usernames(*, project: Project) -> list[str]:
    return list(
        Membership.objects.filter(project=project).order_by("user__username").values_list("user__username", flat=True)
    )
