"""REST API for annotations: submit (create or update), list, and drafts."""

from __future__ import annotations

import math

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.lean import LeanPostView
from projects.annotations import review_api, services
from projects.annotations.models import Annotation, AnnotationStatus, Comment
from projects.assignment.api import task_for_user
from projects.core.faults import fault_point
from projects.core.models import Role
from projects.core.permissions import ProjectRolePermission, check_token_scope


class AnnotationSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Annotation
        fields = (
            "id",
            "task",
            "user",
            "username",
            "result",
            "status",
            "review_state",
            "reviewed_result",
            "lead_time",
            "prediction",
            "guideline_version",
            "created_at",
            "updated_at",
            "submitted_at",
        )
        read_only_fields = fields


def annotation_data(annotation: Annotation, *, username: str) -> dict:
    """``AnnotationSerializer``'s output built by hand, for the submit path (every submission
    renders one; a ModelSerializer builds its fields anew for each instance)."""
    return {
        "id": annotation.pk,
        "task": annotation.task_id,
        "user": annotation.user_id,
        "username": username,
        "result": annotation.result,
        "status": annotation.status,
        "review_state": annotation.review_state,
        "reviewed_result": annotation.reviewed_result,
        "lead_time": annotation.lead_time,
        "prediction": annotation.prediction_id,
        "guideline_version": annotation.guideline_version,
        "created_at": annotation.created_at,
        "updated_at": annotation.updated_at,
        "submitted_at": annotation.submitted_at,
    }


class AnnotationInputSerializer(serializers.Serializer):
    result = serializers.JSONField(help_text="Field name → value, validated against the project's label schema.")
    lead_time = serializers.FloatField(required=False, min_value=0, help_text="Seconds spent since the last save.")
    prediction = serializers.IntegerField(
        required=False, allow_null=True, help_text="The prediction this started from."
    )
    guideline_version = serializers.IntegerField(
        required=False, allow_null=True, help_text="The guidelines version you were shown (default: the current one)."
    )


_MAX_EXACT_FLOAT = 2**53


def submit_input(data) -> dict | None:
    """The submit body's fields when ``AnnotationInputSerializer`` would take them as they are;
    None for anything else (the serializer then answers, with its own errors or conversions).

    The serializer builds its four fields anew for every request; every submission has a body
    that needs none of its conversions, so it is checked here.
    """
    if type(data) is not dict or data.get("result") is None:
        return None
    fields = {"result": data["result"]}
    if "lead_time" in data:
        lead_time = data["lead_time"]
        if type(lead_time) is int and 0 <= lead_time <= _MAX_EXACT_FLOAT:
            fields["lead_time"] = float(lead_time)
        elif type(lead_time) is float and 0 <= lead_time < math.inf:
            fields["lead_time"] = lead_time
        else:
            return None
    for key in ("prediction", "guideline_version"):
        if key in data:
            value = data[key]
            if value is not None and type(value) is not int:
                return None
            fields[key] = value
    return fields


class DraftSerializer(serializers.Serializer):
    result = serializers.JSONField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class DraftInputSerializer(serializers.Serializer):
    result = serializers.JSONField()
    lead_time = serializers.FloatField(required=False, min_value=0)


class TaskAnnotationsView(LeanPostView):
    """``GET``: the task's submitted annotations you may see. ``POST``: submit yours (an update if
    you already submitted this task)."""

    permission_classes = [IsAuthenticated]
    lean_reads_body = True

    @extend_schema(responses=AnnotationSerializer(many=True))
    def get(self, request, task_id: int) -> Response:
        task, membership = task_for_user(request, task_id)
        qs = task.annotations.select_related("user").filter(status="submitted").order_by("id")
        if not membership.has_role(Role.REVIEWER) and not task.project.annotators_see_others:
            qs = qs.filter(user=request.user)
        return Response(AnnotationSerializer(qs, many=True).data)

    @extend_schema(request=AnnotationInputSerializer, responses={200: AnnotationSerializer, 201: AnnotationSerializer})
    def post(self, request, task_id: int) -> Response:
        check_token_scope(request, self)
        return Response(*self.lean_post_response(request, request.data, task_id=task_id))

    def lean_post_response(self, request, data, *, task_id: int) -> tuple[dict, int]:
        fields = submit_input(data)
        if fields is None:
            # A body the fast check does not take: the serializer decides, after the 404 check,
            # as for every other endpoint (a stranger learns nothing from a 400).
            task_for_user(request, task_id)
            serializer = AnnotationInputSerializer(data=data)
            serializer.is_valid(raise_exception=True)
            fields = serializer.validated_data
        annotation, created = services.annotation_submit_visible(
            task_id=task_id,
            user=request.user,
            result=fields["result"],
            lead_time=fields.get("lead_time"),
            prediction_id=fields.get("prediction"),
            guideline_version=fields.get("guideline_version"),
        )
        fault_point("annotation.submitted")
        return (
            annotation_data(annotation, username=request.user.username),
            status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class TaskDraftView(APIView):
    """Your autosaved working copy of this task's result."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=DraftSerializer)
    def get(self, request, task_id: int) -> Response:
        task, _ = task_for_user(request, task_id)
        mine = task.annotations.filter(user=request.user).first()
        return Response({"result": mine.draft if mine else None, "updated_at": mine.updated_at if mine else None})

    @extend_schema(request=DraftInputSerializer, responses=DraftSerializer)
    def put(self, request, task_id: int) -> Response:
        check_token_scope(request, self)
        task, _ = task_for_user(request, task_id)
        data = DraftInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        annotation = services.annotation_save_draft(
            task=task,
            user=request.user,
            result=data.validated_data["result"],
            lead_time=data.validated_data.get("lead_time"),
        )
        return Response({"result": annotation.draft, "updated_at": annotation.updated_at})


class CommentSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Comment
        fields = ("id", "task", "user", "username", "text", "is_resolved", "created_at")
        read_only_fields = fields


class CommentInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=services.MAX_COMMENT_LENGTH)


class TaskCommentsView(generics.ListCreateAPIView):
    """Comments on a task, oldest first. Annotators see them on tasks they hold or annotated;
    reviewers and up on every task of their projects. Anyone who can see the task may comment."""

    permission_classes = [IsAuthenticated]
    serializer_class = CommentSerializer
    queryset = Comment.objects.none()

    def get_queryset(self):
        task, _ = task_for_user(self.request, self.kwargs["task_id"])
        return Comment.objects.filter(task=task).select_related("user").order_by("id")

    @extend_schema(request=CommentInputSerializer, responses={201: CommentSerializer})
    def post(self, request, task_id: int) -> Response:
        check_token_scope(request, self)
        task, _ = task_for_user(request, task_id)
        data = CommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        comment = services.comment_create(task=task, user=request.user, text=data.validated_data["text"])
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class MyAnnotationSerializer(AnnotationSerializer):
    article_title = serializers.CharField(source="task.article.title", read_only=True)
    label_url = serializers.SerializerMethodField()

    class Meta(AnnotationSerializer.Meta):
        fields = (*AnnotationSerializer.Meta.fields, "article_title", "label_url")
        read_only_fields = fields

    def get_label_url(self, annotation: Annotation) -> str:
        return f"/tasks/{annotation.task_id}/label/"


class MyAnnotationsView(generics.ListAPIView):
    """Your own submitted annotations in the project, newest first, to revisit and edit."""

    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = Role.ANNOTATOR
    serializer_class = MyAnnotationSerializer
    queryset = Annotation.objects.none()

    def get_queryset(self):
        return (
            Annotation.objects.filter(
                project=self.request.project, user=self.request.user, status=AnnotationStatus.SUBMITTED
            )
            .select_related("user", "task__article")
            .order_by("-submitted_at", "-id")
        )


URLS = [
    path("tasks/<int:task_id>/annotations/", TaskAnnotationsView.as_view(), name="annotations-task-annotations"),
    path("tasks/<int:task_id>/draft/", TaskDraftView.as_view(), name="annotations-task-draft"),
    path("tasks/<int:task_id>/comments/", TaskCommentsView.as_view(), name="annotations-task-comments"),
    path("projects/<int:project_pk>/my-annotations/", MyAnnotationsView.as_view(), name="annotations-my-annotations"),
]

URLS += review_api.URLS  # review queue, verdicts, adjudication (projects/annotations/review_api.py)
