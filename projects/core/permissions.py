"""Role checks for project-scoped views.

``ProjectRolePermission`` resolves the project from the URL once, puts ``request.project`` and
``request.membership`` on the request, and compares the member's role with what the view
declares (``read_role``, ``write_role``, or ``action_roles`` per action). Users who are not
members get 404, so a project's existence is not revealed.

A view on a hot path may set ``membership_in_view = True``: it then reads the membership itself,
in the same statement as its own work (the queue's locked read), answers 404 for non-members
and calls ``require_role`` with its declared role before acting. The token scope is still
checked here.
"""

from __future__ import annotations

import functools

from django.db import connection
from rest_framework import permissions
from rest_framework.exceptions import NotFound, PermissionDenied

from annotator.db import MAX_ID, ModelColumns, hot_cursor
from projects.core.models import ApiToken, Membership, Project, Role, TokenScope


def membership_for(user, project: Project) -> Membership | None:
    """The user's membership in the project; superusers act as admins of every project."""
    if not user.is_authenticated:
        return None
    membership = Membership.objects.filter(project=project, user=user).first()
    if membership is None and user.is_superuser:
        return Membership(project=project, user=user, role=Role.ADMIN)
    return membership


# The project and the user's membership in one statement, composed once and prepared: every
# project-scoped API request and page runs it, and building it with the ORM (one or two queries)
# cost about 1 ms of CPU against 0.1 ms to run.
_PROJECT_COLUMNS = ModelColumns(Project, "p")
_MEMBERSHIP_COLUMNS = ModelColumns(Membership, "m")


@functools.cache
def _project_membership_sql() -> str:
    return (
        f"SELECT {_PROJECT_COLUMNS.select(connection)}, {_MEMBERSHIP_COLUMNS.select(connection)} "
        f"FROM {Project._meta.db_table} p LEFT JOIN {Membership._meta.db_table} m "
        "ON m.project_id = p.id AND m.user_id = %(user)s WHERE p.id = %(project)s"
    )


def project_and_membership(user, project_id) -> tuple[Project | None, Membership | None]:
    """The project and the user's membership, or (None, None) when there is no such project (or
    the user is anonymous). Superusers who are not members get an unsaved admin membership;
    other non-members get (project, None)."""
    try:
        project_id = int(project_id)
    except (TypeError, ValueError):
        return None, None
    if not user.is_authenticated or not 0 < project_id <= MAX_ID:
        return None, None
    with hot_cursor() as cursor:
        cursor.execute(_project_membership_sql(), {"project": project_id, "user": user.pk})
        row = cursor.fetchone()
    if row is None:
        return None, None
    project = _PROJECT_COLUMNS.build(connection, row)
    return project, membership_from_row(row, _PROJECT_COLUMNS.width, project=project, user=user)


def membership_select() -> str:
    """The membership's columns for a composed ``SELECT`` that ``LEFT JOIN``s the membership as
    ``m``; read them back with ``membership_from_row``."""
    return _MEMBERSHIP_COLUMNS.select(connection)


def membership_from_row(row, start: int, *, project: Project, user) -> Membership | None:
    """The user's membership from ``row[start:]`` (``membership_select``'s columns, all NULL when
    the user is no member): superusers who are not members get an unsaved admin membership,
    others None, as ``membership_for`` decides."""
    if row[start] is not None:  # the membership's id
        membership = _MEMBERSHIP_COLUMNS.build(connection, row, start)
        membership.project, membership.user = project, user
        return membership
    if user.is_superuser:
        return Membership(project=project, user=user, role=Role.ADMIN)
    return None


def resolve_project(request, project_id) -> tuple[Project, Membership]:
    """Load the project and the user's membership, or raise 404 for non-members."""
    project, membership = project_and_membership(request.user, project_id)
    if membership is None:
        raise NotFound("Project not found.")
    request.project = project
    request.membership = membership
    return project, membership


def require_role(request, membership: Membership, role: str) -> None:
    if not membership.has_role(role):
        raise PermissionDenied(f"This needs the {role} role in this project (you are {membership.role}).")


def token_scope_refusal(token: ApiToken, method: str, view) -> str | None:
    """Why ``token`` may not make a ``method`` request to ``view``, or None when it may."""
    if token.scope == TokenScope.FULL or method in permissions.SAFE_METHODS:
        return None
    if token.scope == TokenScope.EXPORT and getattr(view, "export_scope_allows_write", False):
        return None
    return f"This token's scope ({token.scope}) does not allow {method} requests."


def check_token_scope(request, view) -> None:
    """Kept for views that call it; ``TokenAuthentication`` already applies it to every request."""
    token = request.auth
    if isinstance(token, ApiToken):
        refusal = token_scope_refusal(token, request.method, view)
        if refusal:
            raise PermissionDenied(refusal)


class ProjectRolePermission(permissions.BasePermission):
    """Views set ``project_url_kwarg`` (default ``project_pk``), ``read_role`` and ``write_role``."""

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        check_token_scope(request, view)
        kwarg = getattr(view, "project_url_kwarg", "project_pk")
        if kwarg not in view.kwargs or getattr(view, "membership_in_view", False):
            return True  # list/create at the top level, or a view that resolves the membership itself
        _, membership = resolve_project(request, view.kwargs[kwarg])
        require_role(request, membership, self.required_role(request, view))
        return True

    @staticmethod
    def required_role(request, view) -> str:
        action_roles = getattr(view, "action_roles", {})
        action = getattr(view, "action", None)
        if action in action_roles:
            return action_roles[action]
        if request.method in permissions.SAFE_METHODS:
            return getattr(view, "read_role", Role.ANNOTATOR)
        return getattr(view, "write_role", Role.MANAGER)
