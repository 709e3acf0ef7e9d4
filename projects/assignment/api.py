"""REST API for the queue: next task, task detail, skip."""

from __future__ import annotations

import functools

from django.db import connection
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.db import MAX_ID, ModelColumns, build_row, hot_cursor
from annotator.lean import LeanPostView
from projects.assignment import manager_api, services
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.exceptions import NoTaskAvailable, NotFound
from projects.core.models import Membership, Project, Role
from projects.core.permissions import (
    ProjectRolePermission,
    check_token_scope,
    membership_from_row,
    membership_select,
    require_role,
)
from projects.documents.models import Article


class ArticleBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    title = serializers.CharField()
    source = serializers.CharField()
    url = serializers.CharField()
    domain = serializers.CharField()


class PredictionBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model_version = serializers.CharField()
    result = serializers.JSONField()
    score = serializers.FloatField(allow_null=True)


class TaskWorkSerializer(serializers.ModelSerializer):
    """A task as an annotator works on it: its text, payload, pre-labels and the user's own draft."""

    text = serializers.CharField(read_only=True)
    article = ArticleBriefSerializer(read_only=True)
    predictions = serializers.SerializerMethodField()
    draft = serializers.SerializerMethodField()
    my_annotation = serializers.SerializerMethodField()
    lease_expires_at = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = (
            "id",
            "project",
            "article",
            "text",
            "payload",
            "required_skill",
            "priority",
            "predictions",
            "draft",
            "my_annotation",
            "lease_expires_at",
        )
        read_only_fields = fields

    def _mine(self, task: Task):
        # draft and my_annotation both need it: one query per task, not two.
        cache = self.context.setdefault("_mine", {})
        if task.pk not in cache:
            cache[task.pk] = task.annotations.filter(user=self.context["request"].user).first()
        return cache[task.pk]

    def get_predictions(self, task: Task) -> PredictionBriefSerializer(many=True):
        return PredictionBriefSerializer(task.predictions.order_by("-created_at", "id"), many=True).data

    def get_draft(self, task: Task) -> dict | None:
        mine = self._mine(task)
        return mine.draft if mine else None

    def get_my_annotation(self, task: Task) -> dict | None:
        mine = self._mine(task)
        if mine is None or mine.status != "submitted":
            return None
        return {
            "id": mine.pk,
            "result": mine.result,
            "submitted_at": mine.submitted_at,
            "review_state": mine.review_state,
        }

    def get_lease_expires_at(self, task: Task) -> str | None:
        assignment = self.context.get("assignment")
        return assignment.expires_at.isoformat() if assignment and assignment.expires_at else None


def task_work_data(task: Task, *, user, assignment: Assignment | None) -> dict:
    """``TaskWorkSerializer``'s output, built by hand: the queue renders it on every next-task call.

    The PostgreSQL queue read the predictions and the user's own annotation in its claim
    statement (``task.queue_extras``); otherwise they are read here.
    """
    extras = getattr(task, "queue_extras", None)
    if extras is None:
        predictions = [
            {"id": p.pk, "model_version": p.model_version, "result": p.result, "score": p.score}
            for p in task.predictions.order_by("-created_at", "id")
        ]
        annotation = task.annotations.filter(user=user).first()
        mine = (
            None
            if annotation is None
            else {
                "id": annotation.pk,
                "status": annotation.status,
                "draft": annotation.draft,
                "result": annotation.result,
                "submitted_at": annotation.submitted_at,
                "review_state": annotation.review_state,
            }
        )
    else:
        predictions, mine = extras["predictions"], extras["mine"]
    article = task.article
    return {
        "id": task.pk,
        "project": task.project_id,
        "article": {
            "id": article.pk,
            "external_id": article.external_id,
            "title": article.title,
            "source": article.source,
            "url": article.url,
            "domain": article.domain,
        },
        "text": task.text,
        "payload": task.payload,
        "required_skill": task.required_skill,
        "priority": task.priority,
        "predictions": predictions,
        "draft": mine["draft"] if mine else None,
        "my_annotation": None
        if mine is None or mine["status"] != "submitted"
        else {k: mine[k] for k in ("id", "result", "submitted_at", "review_state")},
        "lease_expires_at": assignment.expires_at.isoformat() if assignment and assignment.expires_at else None,
    }


# ``task_for_user``'s statement: the task, its article and project, the user's membership and
# whether they ever had the task. Every task page, draft save, skip, flag and comment runs it; the
# same query built with the ORM (select_related, two subqueries, two EXISTS) cost 2.2 ms of CPU
# to build and compile against 0.14 ms to run, so it is composed once and prepared
# (``annotator.db``). The subqueries name the task by its parameter: one probe of a unique
# (task, user) index each, however long the user's history.
_TASK_COLUMNS = ModelColumns(Task, "t")
_ARTICLE_COLUMNS = ModelColumns(Article, "a")
_PROJECT_COLUMNS = ModelColumns(Project, "p")


@functools.cache
def _task_for_user_sql() -> str:
    # Annotations live in a higher app: reached through the reverse relation, as the serializer does.
    annotations = Task.annotations.rel.related_model._meta.db_table
    return f"""SELECT {_TASK_COLUMNS.select(connection)}, {_ARTICLE_COLUMNS.select(connection)},
    {_PROJECT_COLUMNS.select(connection)}, {membership_select()},
    EXISTS (SELECT 1 FROM {Assignment._meta.db_table} v WHERE v.task_id = %(task)s AND v.user_id = %(user)s)
    OR EXISTS (SELECT 1 FROM {annotations} w WHERE w.task_id = %(task)s AND w.user_id = %(user)s)
FROM {Task._meta.db_table} t
JOIN {Article._meta.db_table} a ON a.id = t.article_id
JOIN {Project._meta.db_table} p ON p.id = t.project_id
LEFT JOIN {Membership._meta.db_table} m ON m.project_id = t.project_id AND m.user_id = %(user)s
WHERE t.id = %(task)s"""


def task_for_user(request, task_id) -> tuple[Task, Membership]:
    """Load a task the user may work on: reviewers and up see all tasks of their projects,
    annotators only tasks they hold, held, or annotated. Others get 404.

    One statement (see ``_task_for_user_sql``); the task comes with its article and project loaded.
    """
    user = request.user
    try:
        task_pk = int(task_id)
    except (TypeError, ValueError):
        raise NotFound("Task not found.") from None
    row = None
    if user.is_authenticated and 0 < task_pk <= MAX_ID:
        with hot_cursor() as cursor:
            cursor.execute(_task_for_user_sql(), {"task": task_pk, "user": user.pk})
            row = cursor.fetchone()
    if row is None:
        raise NotFound("Task not found.")
    (task, article, project), end = build_row(connection, row, _TASK_COLUMNS, _ARTICLE_COLUMNS, _PROJECT_COLUMNS)
    task.article, task.project = article, project
    membership = membership_from_row(row, end, project=project, user=user)
    had_it = row[-1]
    if membership is None or (not membership.has_role(Role.REVIEWER) and not had_it):
        raise NotFound("Task not found.")
    request.project = project
    request.membership = membership
    return task, membership


NO_TASK_RESPONSE = inline_serializer(
    name="NoTaskError",
    fields={
        "error": inline_serializer(
            name="NoTaskErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(),
                "held_by_others": serializers.IntegerField(min_value=0, max_value=1000, required=False),
                "opens_later": serializers.IntegerField(min_value=0, max_value=1000, required=False),
                "opens_at": serializers.DateTimeField(allow_null=True, required=False),
            },
        )
    },
)


def no_task_error(project, user) -> NoTaskAvailable:
    """The 404 of an empty queue, with what may still come (``services.QueueOutlook``): scripts ask
    again while ``held_by_others`` or ``opens_later`` is above 0."""
    outlook = services.queue_outlook(project=project, user=user)
    parts = []
    if outlook.held_by_others:
        n = outlook.held_by_others
        are = "are" if n != 1 else "is"
        parts.append(f"{n} task{'s' if n != 1 else ''} you could take {are} leased by other annotators")
    if outlook.opens_later:
        n = outlook.opens_later
        parts.append(
            f"{n} task{'s' if n != 1 else ''} waiting for experts open{'s' if n == 1 else ''} to you from "
            f"{outlook.opens_at:%Y-%m-%d %H:%M} UTC unless an expert takes {'it' if n == 1 else 'them'} first"
        )
    if parts:
        message = f"No task is free for you right now: {'; '.join(parts)}. Ask again later."
    else:
        message = "No more tasks for you in this project."
    extra = {
        "held_by_others": outlook.held_by_others,
        "opens_later": outlook.opens_later,
        "opens_at": serializers.DateTimeField().to_representation(outlook.opens_at) if outlook.opens_at else None,
    }
    return NoTaskAvailable(message, extra=extra)


class NextTaskView(LeanPostView):
    """Lease the best open task to the current user (or return the one they already hold)."""

    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = write_role = Role.ANNOTATOR
    # The queue reads the membership and role in its own locked statement (one query instead of
    # two); the view then applies the role check ProjectRolePermission would have.
    membership_in_view = True

    @extend_schema(
        request=None,
        responses={
            200: TaskWorkSerializer,
            404: OpenApiResponse(
                response=NO_TASK_RESPONSE,
                description="No task free for you (code `no_task`). `held_by_others` counts the tasks you could "
                "still be handed once other annotators' leases on them end; `opens_later` (skill-routed projects "
                "with a fallback wait) the tasks reserved for experts that open to you from `opens_at` unless an "
                "expert takes them. Both 0: you are done; otherwise ask again later. Also the 404 of an unknown "
                "project or a non-member (code `not_found`, without these fields).",
            ),
        },
    )
    def post(self, request, project_pk: int) -> Response:
        return Response(*self.lean_post_response(request, None, project_pk=project_pk))

    def lean_post_response(self, request, data, *, project_pk: int) -> tuple[dict, int]:
        membership, assignment = services.task_next_in_project(
            project_id=project_pk, user=request.user, role=self.write_role
        )
        if membership is None:
            raise NotFound("Project not found.")
        request.project, request.membership = membership.project, membership
        require_role(request, membership, self.write_role)
        if assignment is None:
            raise no_task_error(membership.project, request.user)
        return task_work_data(assignment.task, user=request.user, assignment=assignment), 200


class TaskDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=TaskWorkSerializer)
    def get(self, request, task_id: int) -> Response:
        task, _ = task_for_user(request, task_id)
        assignment = Assignment.objects.filter(task=task, user=request.user, status=AssignmentStatus.LEASED).first()
        return Response(task_work_data(task, user=request.user, assignment=assignment))


class SkipSerializer(serializers.Serializer):
    status = serializers.CharField()


class TaskSkipView(APIView):
    """Pass on a task: it leaves your queue for good."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses=SkipSerializer)
    def post(self, request, task_id: int) -> Response:
        check_token_scope(request, self)
        task, membership = task_for_user(request, task_id)
        require_role(request, membership, Role.ANNOTATOR)
        assignment = services.task_skip(task=task, user=request.user)
        return Response({"status": assignment.status})


class EscalateInputSerializer(serializers.Serializer):
    domain = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="The expertise this task needs."
    )
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    unsafe = serializers.BooleanField(required=False, default=False)


class EscalateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    is_flagged = serializers.BooleanField()
    flag_domain = serializers.CharField()
    flag_unsafe = serializers.BooleanField()


class TaskEscalateView(APIView):
    """Flag a task as beyond your expertise or unsafe: it leaves your queue and goes to experts of
    ``domain`` (``safety`` when only ``unsafe`` is given). The flag stays visible to managers."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=EscalateInputSerializer, responses=EscalateSerializer)
    def post(self, request, task_id: int) -> Response:
        check_token_scope(request, self)
        task, membership = task_for_user(request, task_id)
        require_role(request, membership, Role.ANNOTATOR)
        data = EscalateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = services.task_escalate(
            task=task,
            user=request.user,
            domain=data.validated_data.get("domain", ""),
            reason=data.validated_data.get("reason", ""),
            unsafe=data.validated_data["unsafe"],
        )
        return Response(
            {
                "id": task.pk,
                "is_flagged": task.is_flagged,
                "flag_domain": task.flag_domain,
                "flag_unsafe": task.flag_unsafe,
            }
        )


URLS = [
    path("projects/<int:project_pk>/next-task/", NextTaskView.as_view(), name="assignment-next-task"),
    path("tasks/<int:task_id>/", TaskDetailView.as_view(), name="assignment-task-detail"),
    path("tasks/<int:task_id>/skip/", TaskSkipView.as_view(), name="assignment-task-skip"),
    path("tasks/<int:task_id>/escalate/", TaskEscalateView.as_view(), name="assignment-task-escalate"),
    *manager_api.URLS,
]
