"""Members page for managers: add, invite, change role, skills and languages, pause, remove.

Every form posts (CSRF-protected) to a small view that calls the same services as the API and
redirects back. The invite link is kept in the session and shown once.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse, reverse_lazy
from django.views.decorators.http import require_POST

from projects.core import invites, selectors, services
from projects.core.exceptions import DomainError, PermissionDenied
from projects.core.models import ROLE_RANK, Membership, Role, SkillLevel
from projects.web.views.common import project_for_page

User = get_user_model()


def _back(project_id: int) -> HttpResponse:
    return redirect("web-members", project_id=project_id)


def format_skills(skills: dict) -> str:
    return ", ".join(f"{domain}={level}" for domain, level in sorted(skills.items()))


def parse_skills(text: str) -> dict[str, str]:
    """``"coding=expert, medicine=generalist"`` (``:`` works too) → a dict; levels checked by the service."""
    skills: dict[str, str] = {}
    for part in text.replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        sep = "=" if "=" in part else ":"
        domain, _, level = part.partition(sep)
        skills[domain.strip()] = level.strip()
    return skills


def parse_languages(text: str) -> list[str]:
    return [code.strip() for code in text.replace("\n", ",").split(",") if code.strip()]


@login_required
def members(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    rows = []
    for member in selectors.members_of(project=project):
        profile = getattr(member.user, "annotator_profile", None)
        rows.append(
            {
                "member": member,
                "skills": format_skills(profile.skills) if profile else "",
                "languages": ", ".join(profile.languages) if profile else "",
                # A manager cannot change an admin, nor make anyone an admin.
                "editable": ROLE_RANK[member.role] <= ROLE_RANK[membership.role],
            }
        )
    grantable = [(value, label) for value, label in Role.choices if ROLE_RANK[value] <= ROLE_RANK[membership.role]]
    invite = request.session.pop("invite_link", None)
    return render(
        request,
        "web/members/members.html",
        {
            "project": project,
            "membership": membership,
            "rows": rows,
            "roles": grantable,
            "levels": SkillLevel.values,
            "invite": invite,
        },
    )


@login_required
@require_POST
def member_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    ident = request.POST.get("user", "").strip()
    user = User.objects.filter(Q(username=ident) | Q(email__iexact=ident)).order_by("id").first() if ident else None
    if user is None:
        messages.error(request, f"No user {ident!r}. Invite them instead to create an account.")
        return _back(project.pk)
    try:
        services.membership_add(
            project=project,
            actor=request.user,
            actor_membership=membership,
            user=user,
            role=request.POST.get("role", ""),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{user.username} added.")
    return _back(project.pk)


@login_required
@require_POST
def member_invite(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    try:
        member, uidb64, token = invites.member_invite(
            project=project,
            actor=request.user,
            actor_membership=membership,
            username=request.POST.get("username", ""),
            email=request.POST.get("email", ""),
            role=request.POST.get("role", ""),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(project.pk)
    link = request.build_absolute_uri(reverse("web-invite-accept", args=[uidb64, token]))
    request.session["invite_link"] = {"username": member.user.username, "url": link}
    return _back(project.pk)


@login_required
@require_POST
def member_update(request: HttpRequest, project_id: int, member_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    member = get_object_or_404(Membership.objects.select_related("user"), pk=member_id, project=project)
    try:
        with transaction.atomic():
            _apply_member_form(request, project, membership, member)
    except DomainError as exc:
        messages.error(request, f"{member.user.username}: {exc.message}")
    else:
        messages.success(request, f"{member.user.username} updated.")
    return _back(project.pk)


def _apply_member_form(request: HttpRequest, project, membership: Membership, member: Membership) -> None:
    """Role, skills and languages, paused flag: one row form, applied all or nothing."""
    if ROLE_RANK[member.role] > ROLE_RANK[membership.role]:
        raise PermissionDenied(f"A {membership.role} cannot change a {member.role}.")
    role = request.POST.get("role", member.role)
    if role != member.role:
        services.membership_update(membership=member, actor=request.user, actor_membership=membership, role=role)
    if "skills" in request.POST or "languages" in request.POST:
        services.profile_update(
            user=member.user,
            actor=request.user,
            skills=parse_skills(request.POST.get("skills", "")),
            languages=parse_languages(request.POST.get("languages", "")),
            project=project,
        )
    paused = request.POST.get("queue_paused") == "on"
    services.membership_set_queue_paused(membership=member, actor=request.user, paused=paused)


@login_required
@require_POST
def member_remove(request: HttpRequest, project_id: int, member_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.MANAGER)
    member = get_object_or_404(Membership.objects.select_related("user"), pk=member_id, project=project)
    try:
        services.membership_remove(membership=member, actor=request.user, actor_membership=membership)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{member.user.username} removed from the project.")
    return _back(project.pk)


class InviteAcceptView(auth_views.PasswordResetConfirmView):
    """The invitee chooses a password (Django's password-reset confirmation, single-use token)."""

    template_name = "web/members/invite_accept.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form):
        messages.success(self.request, "Your password is set. Log in to start.")
        return super().form_valid(form)


urlpatterns = [
    path("projects/<int:project_id>/members/", members, name="web-members"),
    path("projects/<int:project_id>/members/add/", member_add, name="web-member-add"),
    path("projects/<int:project_id>/members/invite/", member_invite, name="web-member-invite"),
    path("projects/<int:project_id>/members/<int:member_id>/", member_update, name="web-member-update"),
    path("projects/<int:project_id>/members/<int:member_id>/remove/", member_remove, name="web-member-remove"),
    path("invite/<uidb64>/<token>/", InviteAcceptView.as_view(), name="web-invite-accept"),
]
