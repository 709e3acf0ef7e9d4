"""REST API for review: the reviewer queue, verdicts, review history, adjudication.

Mounted through ``projects.annotations.api.URLS``. Reviewers and up review and adjudicate;
annotators get 403 there, non-members 404. An annotator sees the reviews of their own annotations
and the list of those returned to them.
"""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.db import MAX_ID, ModelColumns, build_row, hot_cursor
from projects.annotations import reviews, selectors
from projects.annotations.models import Annotation, Review, TaskLabel, Verdict
from projects.assignment.models import Task
from projects.core.exceptions import NoTaskAvailable, NotFound
from projects.core.models import Membership, Project, Role
from projects.core.permissions import (
    ProjectRolePermission,
    check_token_scope,
    membership_for,
    membership_from_row,
    membership_select,
    require_role,
)
from projects.documents.models import Article


class ReviewSerializer(serializers.ModelSerializer):
    reviewer_username = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = Review
        fields = (
            "id",
            "annotation",
            "reviewer",
            "reviewer_username",
            "verdict",
            "comment",
            "corrected_result",
            "created_at",
        )
        read_only_fields = fields


class ReviewItemSerializer(serializers.ModelSerializer):
    """An annotation as a reviewer sees it: the task text, the result and the review history."""

    username = serializers.CharField(source="user.username", read_only=True)
    text = serializers.CharField(source="task.text", read_only=True)
    payload = serializers.JSONField(source="task.payload", read_only=True)
    article_title = serializers.CharField(source="task.article.title", read_only=True)
    reviews = serializers.SerializerMethodField()

    class Meta:
        model = Annotation
        fields = (
            "id",
            "project",
            "task",
            "user",
            "username",
            "article_title",
            "text",
            "payload",
            "result",
            "reviewed_result",
            "status",
            "review_state",
            "lead_time",
            "submitted_at",
            "reviews",
        )
        read_only_fields = fields

    def get_reviews(self, annotation: Annotation) -> ReviewSerializer(many=True):
        return ReviewSerializer(selectors.reviews_of(annotation=annotation), many=True).data


class ReviewQueueItemSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Annotation
        fields = ("id", "task", "user", "username", "review_state", "submitted_at")
        read_only_fields = fields


class ReturnedAnnotationSerializer(serializers.ModelSerializer):
    last_review = serializers.SerializerMethodField()

    class Meta:
        model = Annotation
        fields = ("id", "task", "result", "review_state", "submitted_at", "last_review")
        read_only_fields = fields

    def get_last_review(self, annotation: Annotation) -> ReviewSerializer(allow_null=True):
        review = selectors.reviews_of(annotation=annotation).last()
        return ReviewSerializer(review).data if review else None


class VerdictInputSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=reviews.MAX_COMMENT_LENGTH)
    corrected_result = serializers.JSONField(
        required=False, allow_null=True, default=None, help_text="For fix: the corrected result (validated)."
    )


# ``_annotation_for``'s statement: the annotation with its task, article, project and annotator,
# and the requesting user's membership. Every review page and verdict runs it; built with the
# ORM (four select_related joins, then the membership) it cost about 1.5 ms of CPU more.
_ANNOTATION = ModelColumns(Annotation, "n")
_TASK = ModelColumns(Task, "t")
_ARTICLE = ModelColumns(Article, "a")
_PROJECT = ModelColumns(Project, "p")


@functools.cache
def _user_columns() -> ModelColumns:
    return ModelColumns(get_user_model(), "u")


@functools.cache
def _annotation_for_sql() -> str:
    user_model = get_user_model()
    return f"""SELECT {_ANNOTATION.select(connection)}, {_TASK.select(connection)}, {_ARTICLE.select(connection)},
    {_PROJECT.select(connection)}, {_user_columns().select(connection)}, {membership_select()}
FROM {Annotation._meta.db_table} n
JOIN {Task._meta.db_table} t ON t.id = n.task_id
JOIN {Article._meta.db_table} a ON a.id = t.article_id
JOIN {Project._meta.db_table} p ON p.id = n.project_id
JOIN {user_model._meta.db_table} u ON u.{user_model._meta.pk.column} = n.user_id
LEFT JOIN {Membership._meta.db_table} m ON m.project_id = n.project_id AND m.user_id = %(user)s
WHERE n.id = %(annotation)s"""


def _annotation_for(request, annotation_id: int) -> tuple[Annotation, Membership]:
    """The annotation (task, article, project and annotator loaded) and the requesting user's
    membership in its project; 404 for anyone who is not a member (superusers are admins)."""
    user = request.user
    row = None
    if user.is_authenticated and 0 < int(annotation_id) <= MAX_ID:
        with hot_cursor() as cursor:
            cursor.execute(_annotation_for_sql(), {"annotation": annotation_id, "user": user.pk})
            row = cursor.fetchone()
    if row is None:
        raise NotFound("Annotation not found.")
    (annotation, task, article, project, annotator), end = build_row(
        connection, row, _ANNOTATION, _TASK, _ARTICLE, _PROJECT, _user_columns()
    )
    task.article, annotation.user, annotation.project = article, annotator, project
    if task.project_id == project.pk:
        task.project = project
    annotation.task = task
    membership = membership_from_row(row, end, project=project, user=user)
    if membership is None:
        raise NotFound("Annotation not found.")
    request.project = project
    request.membership = membership
    return annotation, membership


class ReviewNextView(APIView):
    """Claim the next pending annotation to review (or get the one you hold). Never your own."""

    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = write_role = Role.REVIEWER

    @extend_schema(
        request=None,
        responses={
            200: ReviewItemSerializer,
            404: OpenApiResponse(description="Nothing waits for your review (code `no_task`)."),
        },
    )
    def post(self, request, project_pk: int) -> Response:
        annotation = reviews.review_next_for_reviewer(project=request.project, reviewer=request.user)
        if annotation is None:
            raise NoTaskAvailable("No annotation waits for your review in this project.")
        annotation, _ = _annotation_for(request, annotation.pk)  # with its task, article and annotator
        return Response(ReviewItemSerializer(annotation).data)


class ReviewQueueView(generics.ListAPIView):
    """Pending annotations you may review, oldest submission first."""

    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = write_role = Role.REVIEWER
    serializer_class = ReviewQueueItemSerializer
    queryset = Annotation.objects.none()

    def get_queryset(self):
        return selectors.review_queue(project=self.request.project, reviewer=self.request.user)


class ReturnedToMeView(generics.ListAPIView):
    """Your annotations a reviewer rejected, with the comment: fix and resubmit them through
    ``POST /api/v1/tasks/{task_id}/annotations/`` (they then wait for review again)."""

    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = write_role = Role.ANNOTATOR
    serializer_class = ReturnedAnnotationSerializer
    queryset = Annotation.objects.none()

    def get_queryset(self):
        return selectors.annotations_returned_to(project=self.request.project, user=self.request.user)


class AnnotationReviewView(APIView):
    """``GET``: the annotation as a reviewer sees it. ``POST``: give a verdict."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=ReviewItemSerializer)
    def get(self, request, annotation_id: int) -> Response:
        annotation, membership = _annotation_for(request, annotation_id)
        require_role(request, membership, Role.REVIEWER)
        return Response(ReviewItemSerializer(annotation).data)

    @extend_schema(request=VerdictInputSerializer, responses={201: ReviewItemSerializer})
    def post(self, request, annotation_id: int) -> Response:
        check_token_scope(request, self)
        annotation, membership = _annotation_for(request, annotation_id)
        require_role(request, membership, Role.REVIEWER)
        data = VerdictInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        review = reviews.review_submit(annotation=annotation, reviewer=request.user, **data.validated_data)
        # The annotation as the verdict left it: read under its lock, task, article and annotator loaded.
        return Response(ReviewItemSerializer(review.annotation).data, status=status.HTTP_201_CREATED)


class AnnotationReviewsView(APIView):
    """The review history of an annotation: for reviewers and up, and for its own annotator."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=ReviewSerializer(many=True))
    def get(self, request, annotation_id: int) -> Response:
        annotation, membership = _annotation_for(request, annotation_id)
        if annotation.user_id != request.user.pk and not membership.has_role(Role.REVIEWER):
            raise NotFound("Annotation not found.")
        return Response(ReviewSerializer(selectors.reviews_of(annotation=annotation), many=True).data)


# --- adjudication -----------------------------------------------------------------------------


class AdjudicationAnnotationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")
    result = serializers.SerializerMethodField(help_text="The reviewed result when there is one.")
    review_state = serializers.CharField()

    def get_result(self, annotation: Annotation) -> dict:
        return reviews.effective_result(annotation)


class TaskLabelSerializer(serializers.ModelSerializer):
    decided_by_username = serializers.CharField(source="decided_by.username", default=None, read_only=True)

    class Meta:
        model = TaskLabel
        fields = (
            "task",
            "result",
            "source",
            "annotation",
            "decided_by",
            "decided_by_username",
            "comment",
            "updated_at",
        )
        read_only_fields = fields


class DisagreementSerializer(serializers.Serializer):
    task_id = serializers.IntegerField()
    fields = serializers.ListField(child=serializers.CharField(), help_text="Fields on which the annotations differ.")
    annotations = AdjudicationAnnotationSerializer(many=True)
    label = serializers.JSONField(allow_null=True, help_text="The adjudicated label, if any.")


class DisagreementPageSerializer(serializers.Serializer):
    results = DisagreementSerializer(many=True)
    next_after = serializers.IntegerField(allow_null=True, help_text="Pass as ?after= for the next page.")


class TaskAdjudicationSerializer(serializers.Serializer):
    task_id = serializers.IntegerField()
    text = serializers.CharField()
    payload = serializers.JSONField()
    fields = serializers.ListField(child=serializers.CharField())
    annotations = AdjudicationAnnotationSerializer(many=True)
    label = TaskLabelSerializer(allow_null=True)


class AdjudicateInputSerializer(serializers.Serializer):
    pick = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="An annotation id.")
    result = serializers.JSONField(required=False, allow_null=True, default=None, help_text="A merged result.")
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=reviews.MAX_COMMENT_LENGTH)


class DisagreementListView(APIView):
    """Tasks whose submitted annotations disagree (exact comparison per field), by task id."""

    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = write_role = Role.REVIEWER

    @extend_schema(
        parameters=[
            OpenApiParameter("after", OpenApiTypes.INT, description="Only tasks with a larger id."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="At most this many rows (1-200, default 50)."),
            OpenApiParameter("include_adjudicated", OpenApiTypes.BOOL, description="Also tasks already adjudicated."),
        ],
        responses=DisagreementPageSerializer,
    )
    def get(self, request, project_pk: int) -> Response:
        try:
            after = max(int(request.query_params.get("after", 0)), 0)
            limit = min(max(int(request.query_params.get("limit", 50)), 1), 200)
        except ValueError:
            raise serializers.ValidationError({"after": "after and limit must be integers"}) from None
        include = request.query_params.get("include_adjudicated", "").lower() in ("1", "true", "yes")
        rows, next_after = selectors.tasks_with_disagreement(
            project=request.project, after=after, limit=limit, include_adjudicated=include
        )
        return Response(DisagreementPageSerializer({"results": rows, "next_after": next_after}).data)


def _task_for_reviewer(request, task_id: int) -> Task:
    task = Task.objects.select_related("article", "project").filter(pk=task_id).first()
    membership = membership_for(request.user, task.project) if task else None
    if membership is None:
        raise NotFound("Task not found.")
    require_role(request, membership, Role.REVIEWER)
    request.project, request.membership = task.project, membership
    return task


def _adjudication_body(task: Task) -> dict:
    annotations, fields = selectors.task_disagreement(task=task)
    label = TaskLabel.objects.filter(task=task).select_related("decided_by").first()
    return {
        "task_id": task.pk,
        "text": task.text,
        "payload": task.payload,
        "fields": fields,
        "annotations": annotations,
        "label": label,
    }


class TaskAdjudicateView(APIView):
    """``GET``: the task's annotations side by side, the fields they differ on and its label.
    ``POST``: set its label by picking an annotation or giving a merged result."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=TaskAdjudicationSerializer)
    def get(self, request, task_id: int) -> Response:
        task = _task_for_reviewer(request, task_id)
        return Response(TaskAdjudicationSerializer(_adjudication_body(task)).data)

    @extend_schema(request=AdjudicateInputSerializer, responses={200: TaskAdjudicationSerializer})
    def post(self, request, task_id: int) -> Response:
        check_token_scope(request, self)
        task = _task_for_reviewer(request, task_id)
        data = AdjudicateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reviews.task_adjudicate(task=task, actor=request.user, **data.validated_data)
        return Response(TaskAdjudicationSerializer(_adjudication_body(task)).data)


URLS = [
    path("projects/<int:project_pk>/review/next/", ReviewNextView.as_view(), name="annotations-review-next"),
    path("projects/<int:project_pk>/review/queue/", ReviewQueueView.as_view(), name="annotations-review-queue"),
    path("projects/<int:project_pk>/review/returned/", ReturnedToMeView.as_view(), name="annotations-review-returned"),
    path("projects/<int:project_pk>/adjudication/", DisagreementListView.as_view(), name="annotations-adjudication"),
    path("annotations/<int:annotation_id>/review/", AnnotationReviewView.as_view(), name="annotations-review"),
    path("annotations/<int:annotation_id>/reviews/", AnnotationReviewsView.as_view(), name="annotations-reviews"),
    path("tasks/<int:task_id>/adjudicate/", TaskAdjudicateView.as_view(), name="annotations-task-adjudicate"),
]
