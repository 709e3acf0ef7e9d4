"""Home (the user's projects), project overview, and the profile page with API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from projects.core import selectors, services
from projects.core.exceptions import DomainError
from projects.core.models import AnnotatorProfile, ApiToken, Role, TokenScope
from projects.web.views.common import project_for_page


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = selectors.attach_counts(selectors.projects_visible_to(user=request.user))
    roles = dict(request.user.memberships.values_list("project_id", "role"))
    rows = [(p, roles.get(p.pk, Role.ADMIN if request.user.is_superuser else "")) for p in projects]
    return render(request, "web/home.html", {"rows": rows})


@login_required
def project_overview(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.ANNOTATOR)
    (project,) = selectors.attach_counts([project])
    return render(
        request,
        "web/project.html",
        {"project": project, "membership": membership, "is_manager": membership.has_role(Role.MANAGER)},
    )


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    profile_row, _ = AnnotatorProfile.objects.get_or_create(user=request.user)
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at", "id")
    new_key = request.session.pop("new_token_key", None)
    return render(
        request,
        "web/profile.html",
        {"profile": profile_row, "tokens": tokens, "new_key": new_key, "scopes": TokenScope.choices},
    )


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    try:
        _, key = services.token_create(
            user=request.user, name=request.POST.get("name", ""), scope=request.POST.get("scope", TokenScope.FULL)
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("web-profile")
    # Shown once on the next page, then gone: only the hash is stored.
    request.session["new_token_key"] = key
    return redirect("web-profile")


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    services.token_revoke(token=token, actor=request.user)
    messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect("web-profile")


urlpatterns = [
    path("", home, name="web-home"),
    path("projects/<int:project_id>/", project_overview, name="web-project"),
    path("profile/", profile, name="web-profile"),
    path("profile/tokens/", token_create, name="web-token-create"),
    path("profile/tokens/<int:token_id>/revoke/", token_revoke, name="web-token-revoke"),
]
