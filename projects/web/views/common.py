"""Helpers shared by page views: the project-role check for server-rendered pages."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from projects.core.models import Membership, Project
from projects.core.permissions import project_and_membership


def project_for_page(request: HttpRequest, project_id: int, role: str) -> tuple[Project, Membership]:
    """The project and the user's membership; 404 for non-members, 403 below ``role``."""
    project, membership = project_and_membership(request.user, project_id)
    if membership is None:
        raise Http404("Project not found.")
    if not membership.has_role(role):
        raise PermissionDenied(f"This page needs the {role} role in this project.")
    return project, membership
