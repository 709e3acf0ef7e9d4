"""REST API for quality: stored figures, per-annotator rows, gold alerts, the adjudication list,
settings, and a recompute trigger. Everything reads stored rows; nothing computes on a GET.

Reviewers, managers and admins read; managers and admins change settings, resolve alerts and
start a recompute; annotators get 403, non-members 404.
"""

from __future__ import annotations

from django.db import transaction
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from projects.core.exceptions import NotFound
from projects.core.models import Role
from projects.core.permissions import ProjectRolePermission
from projects.quality import selectors, services
from projects.quality.jobs import quality_recompute_job
from projects.quality.models import AnnotatorQuality, ConsensusMethod, GoldAlert, QualitySettings, TaskConsensus


class QualitySettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = QualitySettings
        fields = (
            "gold_threshold",
            "gold_min_answers",
            "pause_on_alert",
            "consensus_method",
            "bootstrap_samples",
            "dirty_at",
            "computed_at",
        )
        read_only_fields = ("dirty_at", "computed_at")


class QualitySettingsInputSerializer(serializers.Serializer):
    gold_threshold = serializers.FloatField(min_value=0, max_value=1, required=False)
    gold_min_answers = serializers.IntegerField(min_value=1, max_value=10_000, required=False)
    pause_on_alert = serializers.BooleanField(required=False)
    consensus_method = serializers.ChoiceField(choices=ConsensusMethod.choices, required=False)
    bootstrap_samples = serializers.IntegerField(min_value=0, max_value=5000, required=False)


class QualityOverviewSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    snapshot = serializers.IntegerField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    stale = serializers.BooleanField(help_text="Annotations changed since these figures were computed.")
    duration_seconds = serializers.FloatField(allow_null=True)
    settings = QualitySettingsSerializer()
    figures = serializers.JSONField(
        allow_null=True,
        help_text="counts, fields (agreement per field), gold, progress, throughput, lead_time, prelabel.",
    )


class AnnotatorQualitySerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = AnnotatorQuality
        fields = (
            "user",
            "username",
            "submitted",
            "median_lead_time",
            "agreement",
            "estimated_accuracy",
            "gold_answers",
            "gold_accuracy",
            "gold_low",
            "gold_high",
            "details",
        )
        read_only_fields = fields


class GoldAlertSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = GoldAlert
        fields = (
            "id",
            "user",
            "username",
            "accuracy",
            "threshold",
            "gold_answers",
            "paused_queue",
            "created_at",
            "resolved_at",
            "resolved_by",
        )
        read_only_fields = fields


class AlertResolveInputSerializer(serializers.Serializer):
    resume_queue = serializers.BooleanField(default=False, help_text="Also unpause the annotator's queue.")


class TaskConsensusSerializer(serializers.ModelSerializer):
    task_agreement = serializers.FloatField(source="task.agreement", read_only=True, allow_null=True)
    label = serializers.JSONField(read_only=True)
    method = serializers.CharField(read_only=True, help_text="majority or dawid_skene")

    class Meta:
        model = TaskConsensus
        fields = ("task", "field", "method", "label", "confidence", "votes", "task_agreement", "updated_at")
        read_only_fields = fields


class RecomputeSerializer(serializers.Serializer):
    status = serializers.CharField()


class _QualityView:
    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = Role.REVIEWER
    write_role = Role.MANAGER


class QualityOverviewView(_QualityView, APIView):
    """The latest stored figures of a project (``figures`` is null before the first recompute)."""

    @extend_schema(responses=QualityOverviewSerializer)
    def get(self, request, project_pk: int) -> Response:
        return Response(QualityOverviewSerializer(selectors.quality_overview(project=request.project)).data)


class AnnotatorQualityListView(_QualityView, generics.ListAPIView):
    """One row per annotator from the latest snapshot, by user id."""

    serializer_class = AnnotatorQualitySerializer
    queryset = AnnotatorQuality.objects.none()

    def get_queryset(self):
        return selectors.annotator_rows(project=self.request.project)


class GoldAlertListView(_QualityView, generics.ListAPIView):
    """Gold-accuracy alerts, newest first; ``?open=true`` for unresolved ones only."""

    serializer_class = GoldAlertSerializer
    queryset = GoldAlert.objects.none()

    @extend_schema(parameters=[OpenApiParameter("open", OpenApiTypes.BOOL, description="Only unresolved alerts.")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        only_open = self.request.query_params.get("open", "").lower() in ("1", "true", "yes")
        return selectors.gold_alerts(project=self.request.project, only_open=only_open)


class GoldAlertResolveView(_QualityView, APIView):
    """Close an alert (managers); ``resume_queue`` also unpauses the annotator's queue."""

    read_role = Role.MANAGER

    @extend_schema(request=AlertResolveInputSerializer, responses=GoldAlertSerializer)
    def post(self, request, project_pk: int, alert_id: int) -> Response:
        alert = GoldAlert.objects.filter(project=request.project, pk=alert_id).first()
        if alert is None:
            raise NotFound("Alert not found.")
        data = AlertResolveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = services.gold_alert_resolve(alert=alert, actor=request.user, **data.validated_data)
        return Response(GoldAlertSerializer(alert).data)


class AdjudicationListView(_QualityView, generics.ListAPIView):
    """Tasks by consensus confidence, lowest first: the ones most worth adjudicating."""

    serializer_class = TaskConsensusSerializer
    queryset = TaskConsensus.objects.none()

    @extend_schema(
        parameters=[
            OpenApiParameter("field", OpenApiTypes.STR, description="A choice or pairwise field (default: all)."),
            OpenApiParameter("max_confidence", OpenApiTypes.FLOAT, description="Only tasks below this confidence."),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        try:
            below = float(params["max_confidence"]) if params.get("max_confidence") else None
        except ValueError:
            raise serializers.ValidationError({"max_confidence": "must be a number"}) from None
        return selectors.adjudication_list(project=self.request.project, field=params.get("field"), below=below)


class QualitySettingsView(_QualityView, APIView):
    """Quality options of the project: gold threshold, pausing, consensus method, bootstrap size."""

    @extend_schema(responses=QualitySettingsSerializer)
    def get(self, request, project_pk: int) -> Response:
        return Response(QualitySettingsSerializer(services.quality_settings_for(request.project)).data)

    @extend_schema(request=QualitySettingsInputSerializer, responses=QualitySettingsSerializer)
    def patch(self, request, project_pk: int) -> Response:
        data = QualitySettingsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.quality_settings_update(project=request.project, actor=request.user, **data.validated_data)
        return Response(QualitySettingsSerializer(row).data)


class RecomputeView(_QualityView, APIView):
    """Queue a full recompute now (managers). 202; figures appear when the job is done."""

    read_role = Role.MANAGER

    @extend_schema(request=None, responses={202: RecomputeSerializer})
    def post(self, request, project_pk: int) -> Response:
        project_id = request.project.pk
        transaction.on_commit(lambda: quality_recompute_job.delay(project_id, force=True))
        return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)


BASE = "projects/<int:project_pk>/quality/"
URLS = [
    path(BASE, QualityOverviewView.as_view(), name="quality-overview"),
    path(f"{BASE}annotators/", AnnotatorQualityListView.as_view(), name="quality-annotators"),
    path(f"{BASE}alerts/", GoldAlertListView.as_view(), name="quality-alerts"),
    path(f"{BASE}alerts/<int:alert_id>/resolve/", GoldAlertResolveView.as_view(), name="quality-alert-resolve"),
    path(f"{BASE}adjudication/", AdjudicationListView.as_view(), name="quality-adjudication"),
    path(f"{BASE}settings/", QualitySettingsView.as_view(), name="quality-settings"),
    path(f"{BASE}recompute/", RecomputeView.as_view(), name="quality-recompute"),
]
