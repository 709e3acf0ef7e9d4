"""REST API of the task manager (managers and admins): list, filter, search, sort, bulk actions,
manual assignment, and progress. Mounted by ``projects.assignment.api``."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.api import EstimatedCountPagination
from projects.assignment import bulk, manager, progress, strategies
from projects.assignment.models import Task
from projects.core.models import Role
from projects.core.permissions import ProjectRolePermission


class HolderSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    status = serializers.CharField()


class TaskRowSerializer(serializers.ModelSerializer):
    """One row of the task manager (the gold answer and payload are left out of lists)."""

    article_id = serializers.IntegerField(source="article.id", read_only=True)
    external_id = serializers.CharField(source="article.external_id", read_only=True)
    title = serializers.CharField(source="article.title", read_only=True)
    snippet = serializers.CharField(read_only=True)
    status = serializers.SerializerMethodField()
    annotators = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = (
            "id",
            "article_id",
            "external_id",
            "title",
            "snippet",
            "segment_index",
            "status",
            "priority",
            "required_skill",
            "is_gold",
            "is_flagged",
            "flag_domain",
            "flag_reason",
            "flag_unsafe",
            "submitted_count",
            "leased_count",
            "skipped_count",
            "is_complete",
            "uncertainty",
            "agreement",
            "annotators",
            "created_at",
        )
        read_only_fields = fields

    def get_status(self, task: Task) -> str:
        return strategies.task_status(
            is_complete=task.is_complete, submitted_count=task.submitted_count, leased_count=task.leased_count
        )

    def get_annotators(self, task: Task) -> HolderSerializer(many=True):
        return HolderSerializer(getattr(task, "holders", []), many=True).data


FILTER_PARAMS = [
    OpenApiParameter("status", str, enum=[c[0] for c in manager.STATUS_CHOICES]),
    OpenApiParameter("annotator", str, description="username"),
    OpenApiParameter("required_skill", str),
    OpenApiParameter("is_gold", bool),
    OpenApiParameter("is_flagged", bool),
    OpenApiParameter("flag_domain", str),
    OpenApiParameter("has_prediction", bool),
    OpenApiParameter("agreement_below", float),
    OpenApiParameter("id_from", int),
    OpenApiParameter("id_to", int),
    OpenApiParameter("search", str, description="Full-text search over article title and text."),
    OpenApiParameter(
        "ordering", str, description=f"Comma-separated, '-' for descending: {', '.join(manager.ORDERING_FIELDS)}."
    ),
]


class ManagerView:
    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = write_role = Role.MANAGER


class TaskListView(ManagerView, ListAPIView):
    """The project's tasks, filtered, searched and sorted; assignments are prefetched per page."""

    serializer_class = TaskRowSerializer
    queryset = Task.objects.none()
    pagination_class = EstimatedCountPagination  # a million tasks: no exact COUNT(*) on every page
    filter_backends: list = []  # TaskFilter runs inside the selector, with ordering validated there

    def get_queryset(self):
        # Filtered once for the rows and the ids (a search probes the list when filtered).
        self.filtered = manager.tasks_filtered(project=self.request.project, params=self.request.query_params)
        return manager.tasks_for_manager(
            project=self.request.project, params=self.request.query_params, filtered=self.filtered
        )

    def page_ids(self, queryset):
        return manager.task_ids_for_manager(
            project=self.request.project, params=self.request.query_params, filtered=getattr(self, "filtered", None)
        )

    @extend_schema(parameters=FILTER_PARAMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class TaskSelectionSerializer(serializers.Serializer):
    task_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=50_000)
    ranges = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=2, max_length=2),
        required=False,
        help_text="Inclusive id ranges, e.g. [[100, 199], [250, 260]].",
    )
    filter = serializers.DictField(required=False, help_text='The list endpoint\'s filters, e.g. {"status": "open"}.')

    def validate(self, attrs):
        given = [k for k in ("task_ids", "ranges", "filter") if k in attrs]
        if len(given) != 1:
            raise serializers.ValidationError({"task_ids": "Send exactly one of task_ids, ranges or filter."})
        return attrs


class BulkInputSerializer(TaskSelectionSerializer):
    action = serializers.ChoiceField(choices=bulk.ACTIONS)
    usernames = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=500)
    priority = serializers.IntegerField(required=False)
    skill = serializers.CharField(required=False, allow_blank=True, max_length=64)
    confirm = serializers.BooleanField(required=False, default=False)


class AssignInputSerializer(TaskSelectionSerializer):
    usernames = serializers.ListField(child=serializers.CharField(max_length=150), min_length=1, max_length=500)


class BulkResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    matched = serializers.IntegerField()
    changed = serializers.IntegerField()


class TaskBulkView(ManagerView, APIView):
    """Apply a bulk action to tasks chosen by ids, id ranges, or the list filters."""

    @extend_schema(request=BulkInputSerializer, responses=BulkResultSerializer)
    def post(self, request, project_pk: int) -> Response:
        data = BulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        tasks, described = manager.selected_tasks(request.project, v)
        result = bulk.tasks_bulk_apply(
            project=request.project,
            actor=request.user,
            action=v["action"],
            tasks=tasks,
            usernames=v.get("usernames"),
            priority=v.get("priority"),
            skill=v.get("skill"),
            confirm=v.get("confirm", False),
            described_as=described,
        )
        return Response(result)


class TaskAssignView(ManagerView, APIView):
    """Manual routing: assign tasks (ids, id ranges or a filter) to named annotators."""

    @extend_schema(request=AssignInputSerializer, responses=BulkResultSerializer)
    def post(self, request, project_pk: int) -> Response:
        data = AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tasks, described = manager.selected_tasks(request.project, data.validated_data)
        result = bulk.tasks_bulk_apply(
            project=request.project,
            actor=request.user,
            action="assign",
            tasks=tasks,
            usernames=data.validated_data["usernames"],
            described_as=described,
        )
        return Response(result)


_counts = {
    "done": serializers.IntegerField(),
    "in_progress": serializers.IntegerField(),
    "remaining": serializers.IntegerField(),
    "review_backlog": serializers.IntegerField(),
    "median_seconds": serializers.FloatField(allow_null=True),
}
ProgressSerializer = inline_serializer(
    "Progress",
    {
        "project": inline_serializer(
            "ProjectProgress",
            {
                "tasks": serializers.IntegerField(),
                "completed": serializers.IntegerField(),
                "in_progress": serializers.IntegerField(),
                "remaining": serializers.IntegerField(),
                "flagged": serializers.IntegerField(),
                "annotations": serializers.IntegerField(),
                "review_backlog": serializers.IntegerField(),
                "median_seconds": serializers.FloatField(allow_null=True),
                "live_leases": serializers.IntegerField(),
            },
        ),
        "annotators": inline_serializer(
            "AnnotatorProgress",
            {
                "username": serializers.CharField(),
                "role": serializers.CharField(),
                "queue_paused": serializers.BooleanField(),
                "skipped": serializers.IntegerField(),
                "escalated": serializers.IntegerField(),
                **_counts,
            },
            many=True,
        ),
        "skills": inline_serializer(
            "SkillProgress",
            {
                "skill": serializers.CharField(),
                "tasks": serializers.IntegerField(),
                "completed": serializers.IntegerField(),
                "annotations": serializers.IntegerField(),
                **{k: v for k, v in _counts.items() if k != "done"},
            },
            many=True,
        ),
    },
)


class ProgressView(ManagerView, APIView):
    """Done, in progress, remaining, review backlog and median seconds per task: per project,
    per annotator (remaining = assigned to them, not started) and per required skill."""

    @extend_schema(responses=ProgressSerializer)
    def get(self, request, project_pk: int) -> Response:
        return Response(progress.project_progress(project=request.project))


URLS = [
    path("projects/<int:project_pk>/tasks/", TaskListView.as_view(), name="assignment-task-list"),
    path("projects/<int:project_pk>/tasks/bulk/", TaskBulkView.as_view(), name="assignment-task-bulk"),
    path("projects/<int:project_pk>/tasks/assign/", TaskAssignView.as_view(), name="assignment-task-assign"),
    path("projects/<int:project_pk>/progress/", ProgressView.as_view(), name="assignment-progress"),
]
