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
    for key, value in changes.items():
        if key in PROJECT_SETTINGS:
            if getattr(project, key) != value:
                setattr(project, key, value)
                changed.append(key)
        elif key == "label_schema":
            schema = validate_schema(value)
            if schema != project.label_schema:
                project.label_schema = schema
                project.schema_version += 1
                changed += ["label_schema", "schema_version"]
        elif key == "guidelines":
            if value != project.guidelines:
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
        audit_log(actor=actor, action="project.update", project=project, target=project, data={"changed": changed})
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
        data={"from": old, "to": role},
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


def profile_update(*, user, actor, skills: dict | None = None, languages: list | None = None) -> AnnotatorProfile:
    profile, _ = AnnotatorProfile.objects.get_or_create(user=user)
    if skills is not None:
        if not isinstance(skills, dict) or not all(
            isinstance(k, str) and 0 < len(k) <= 64 and v in SkillLevel.values for k, v in skills.items()
        ):
            raise ValidationFailed(
                "Skills must map domain names to a level.",
                fields={"skills": f"levels are {', '.join(SkillLevel.values)}"},
            )
        profile.skills = skills
    if languages is not None:
        if not isinstance(languages, list) or not all(isinstance(x, str) and 0 < len(x) <= 16 for x in languages):
            raise ValidationFailed(
                "Languages must be a list of language codes.", fields={"languages": 'e.g. ["en", "de"]'}
            )
        profile.languages = languages
    profile.save()
    audit_log(
        actor=actor, action="profile.update", target=profile, data={"user": user.username, "skills": profile.skills}
    )
    return profile


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
    audit_log(actor=user, action="token.create", target=token, data={"prefix": token.prefix, "scope": scope})
    return token, key


def token_revoke(*, token: ApiToken, actor) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_log(actor=actor, action="token.revoke", target=token, data={"prefix": token.prefix})
    return token
