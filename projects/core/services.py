"""Writes on projects, members, profiles and tokens. Each records an audit event."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from projects.core.exceptions import Conflict, PermissionDenied, ValidationFailed
from projects.core.models import (
    ROLE_RANK,
    AnnotatorProfile,
    ApiToken,
    AuditEvent,
    GuidelineVersion,
    Membership,
    Project,
    Role,
    SkillLevel,
    TokenScope,
    hash_token,
)
from projects.core.schema import validate_schema

User = get_user_model()

PROJECT_SETTINGS = (
    "name",
    "description",
    "overlap",
    "assignment_policy",
    "skill_fallback",
    "skill_fallback_minutes",
    "review_policy",
    "review_sample_percent",
    "gold_ratio",
    "lease_minutes",
    "queue_order",
    "annotators_see_others",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def audit_log(
    *, actor, action: str, project: Project | None = None, target: Any = None, data: dict | None = None
) -> None:
    AuditEvent.objects.create(
        project=project,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        target_type=type(target).__name__ if target is not None else "",
        target_id=str(getattr(target, "pk", "") or ""),
        data=data or {},
    )


@transaction.atomic
def project_create(*, actor, name: str, label_schema: dict, guidelines: str = "", **settings: Any) -> Project:
    """Create a project; its creator becomes its admin."""
    unknown = set(settings) - set(PROJECT_SETTINGS)
    if unknown:
        raise ValidationFailed(f"Unknown project settings: {', '.join(sorted(unknown))}")
    project = Project.objects.create(
        name=name,
        label_schema=validate_schema(label_schema),
        guidelines=guidelines,
        created_by=actor,
        **settings,
    )
    GuidelineVersion.objects.create(project=project, version=1, text=guidelines, created_by=actor)
    Membership.objects.create(project=project, user=actor, role=Role.ADMIN)
    audit_log(actor=actor, action="project.create", project=project, target=project)
    return project


@transaction.atomic
def project_update(*, project: Project, actor, **changes: Any) -> Project:
    """Update settings; a changed schema or guidelines text gets a new version number."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    changed: list[str] = []
    # old -> new per setting for the audit trail; the schema and guidelines are long, so their
    # entries name versions and the fields added or removed instead of copying the text.
    diff: dict[str, Any] = {}
    for key, value in changes.items():
        if key in PROJECT_SETTINGS:
            if getattr(project, key) != value:
                diff[key] = {"from": getattr(project, key), "to": value}
                setattr(project, key, value)
                changed.append(key)
        elif key == "label_schema":
            schema = validate_schema(value)
            if schema != project.label_schema:
                old_names = [f.get("name") for f in (project.label_schema or {}).get("fields", [])]
                new_names = [f.get("name") for f in schema.get("fields", [])]
                diff["label_schema"] = {
                    "from": project.schema_version,
                    "to": project.schema_version + 1,
                    "added": [n for n in new_names if n not in old_names],
                    "removed": [n for n in old_names if n not in new_names],
                }
                project.label_schema = schema
                project.schema_version += 1
                changed += ["label_schema", "schema_version"]
        elif key == "guidelines":
            if value != project.guidelines:
                diff["guidelines"] = {"from": project.guidelines_version, "to": project.guidelines_version + 1}
                project.guidelines = value
                project.guidelines_version += 1
                changed += ["guidelines", "guidelines_version"]
                GuidelineVersion.objects.create(
                    project=project, version=project.guidelines_version, text=value, created_by=actor
                )
        else:
            raise ValidationFailed(f"Unknown project setting: {key}")
    if changed:
        project.save(update_fields=[*changed, "updated_at"])
        audit_log(
            actor=actor,
            action="project.update",
            project=project,
            target=project,
            data={"changed": changed, "diff": diff},
        )
    return project


@transaction.atomic
def project_delete(*, project: Project, actor) -> None:
    audit_log(actor=actor, action="project.delete", project=None, target=project, data={"name": project.name})
    project.delete()


def _check_grant(actor_membership: Membership, role: str) -> None:
    # A manager manages members up to manager level; only admins create or change admins.
    if ROLE_RANK[role] > ROLE_RANK[actor_membership.role]:
        raise PermissionDenied(f"A {actor_membership.role} cannot grant the {role} role.")


@transaction.atomic
def membership_add(*, project: Project, actor, actor_membership: Membership, user, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}.", fields={"role": f"must be one of {', '.join(Role.values)}"})
    _check_grant(actor_membership, role)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError:
        raise Conflict(f"{user.username} is already a member of this project.") from None
    AnnotatorProfile.objects.get_or_create(user=user)
    audit_log(
        actor=actor, action="member.add", project=project, target=membership, data={"user": user.username, "role": role}
    )
    return membership


def _ensure_an_admin_remains(membership: Membership) -> None:
    if membership.role != Role.ADMIN:
        return
    others = Membership.objects.filter(project=membership.project_id, role=Role.ADMIN).exclude(pk=membership.pk)
    if not others.exists():
        raise Conflict("A project must keep at least one admin.")


@transaction.atomic
def membership_update(*, membership: Membership, actor, actor_membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}.", fields={"role": f"must be one of {', '.join(Role.values)}"})
    _check_grant(actor_membership, role)
    _check_grant(actor_membership, membership.role)
    if role != Role.ADMIN:
        _ensure_an_admin_remains(membership)
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_log(
        actor=actor,
        action="member.update",
        project=membership.project,
        target=membership,
        data={"user": membership.user.username, "from": old, "to": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor, actor_membership: Membership) -> None:
    _check_grant(actor_membership, membership.role)
    _ensure_an_admin_remains(membership)
    audit_log(
        actor=actor,
        action="member.remove",
        project=membership.project,
        target=membership,
        data={"user": membership.user.username, "role": membership.role},
    )
    membership.delete()


@transaction.atomic
def profile_update(
    *, user, actor, skills: dict | None = None, languages: list | None = None, project: Project | None = None
) -> AnnotatorProfile:
    """Set a user's skills and languages. ``project`` is where the change was made from (a
    members page), so the event shows in that project's audit trail."""
    profile, _ = AnnotatorProfile.objects.select_for_update().get_or_create(user=user)
    diff: dict[str, Any] = {}
    if skills is not None:
        if not isinstance(skills, dict) or not all(
            isinstance(k, str) and 0 < len(k) <= 64 and v in SkillLevel.values for k, v in skills.items()
        ):
            raise ValidationFailed(
                "Skills must map domain names to a level.",
                fields={"skills": f"levels are {', '.join(SkillLevel.values)}"},
            )
        if skills != profile.skills:
            diff["skills"] = {"from": profile.skills, "to": skills}
        profile.skills = skills
    if languages is not None:
        if not isinstance(languages, list) or not all(isinstance(x, str) and 0 < len(x) <= 16 for x in languages):
            raise ValidationFailed(
                "Languages must be a list of language codes.", fields={"languages": 'e.g. ["en", "de"]'}
            )
        if languages != profile.languages:
            diff["languages"] = {"from": profile.languages, "to": languages}
        profile.languages = languages
    profile.save()
    if diff:
        audit_log(
            actor=actor,
            action="profile.update",
            project=project,
            target=profile,
            data={"user": user.username, **diff},
        )
    return profile


@transaction.atomic
def membership_set_queue_paused(*, membership: Membership, actor, paused: bool) -> Membership:
    """Pause or resume a member's queue (they get no new tasks while paused)."""
    if membership.queue_paused != paused:
        membership.queue_paused = paused
        membership.save(update_fields=["queue_paused"])
        audit_log(
            actor=actor,
            action="member.queue_paused",
            project=membership.project,
            target=membership,
            data={"user": membership.user.username, "from": not paused, "to": paused},
        )
    return membership


@transaction.atomic
def token_create(
    *, user, name: str = "", scope: str = TokenScope.FULL, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token; returns it with the key, which is not stored and cannot be shown again."""
    if scope not in TokenScope.values:
        raise ValidationFailed(f"Unknown scope {scope!r}.", fields={"scope": f"one of {', '.join(TokenScope.values)}"})
    key = secrets.token_hex(20)
    token = ApiToken.objects.create(
        user=user, name=name[:100], prefix=key[:8], key_hash=hash_token(key), scope=scope, expires_at=expires_at
    )
    audit_log(
        actor=user,
        action="token.create",
        target=token,
        data={"name": token.name, "prefix": token.prefix, "scope": scope, "expires_at": _iso(expires_at)},
    )
    return token, key


@transaction.atomic
def token_revoke(*, token: ApiToken, actor) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_log(actor=actor, action="token.revoke", target=token, data={"name": token.name, "prefix": token.prefix})
    return token
