"""REST API for pre-labeling: runs (start, list, detail, cancel), labeler configs, trained
models, and prediction statistics. Managers run and read; only admins configure labelers."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from projects.core.models import Role
from projects.core.permissions import ProjectRolePermission
from projects.prelabel import selectors, services, training
from projects.prelabel.labelers import LabelerUnavailable
from projects.prelabel.labelers.base import LabelerContext
from projects.prelabel.labelers.remote import LabelStudioBackendLabeler
from projects.prelabel.models import Labeler, LabelerKind, PrelabelRun, TrainedModel

SECRET_KEYS = ("api_key",)
MASK = "********"


class PrelabelRunSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    progress = serializers.FloatField(read_only=True, help_text="Percent of tasks done or failed.")
    filter = serializers.JSONField(source="task_filter", read_only=True)
    status = serializers.CharField(read_only=True, help_text="queued, running, finished, failed or cancelled")
    labeler_kind = serializers.CharField(read_only=True, help_text="rules, sklearn, ls_backend or openai")

    class Meta:
        model = PrelabelRun
        fields = (
            "id",
            "labeler_name",
            "labeler_kind",
            "model_version",
            "filter",
            "status",
            "total",
            "done",
            "failed",
            "progress",
            "message",
            "cancel_requested",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        )
        read_only_fields = fields


class RunErrorSerializer(serializers.Serializer):
    task_id = serializers.IntegerField()
    message = serializers.CharField()


class PrelabelRunDetailSerializer(PrelabelRunSerializer):
    errors = serializers.SerializerMethodField(help_text=f"Per-task errors (at most {selectors.MAX_RUN_ERRORS}).")

    class Meta(PrelabelRunSerializer.Meta):
        fields = (*PrelabelRunSerializer.Meta.fields, "errors")
        read_only_fields = fields

    @extend_schema_field(RunErrorSerializer(many=True))
    def get_errors(self, run: PrelabelRun) -> list[dict]:
        return selectors.run_errors(run=run)


class RunStartInputSerializer(serializers.Serializer):
    labeler = serializers.CharField(
        max_length=64, help_text="A configured labeler's name, or 'rules' / 'sklearn' with an inline config."
    )
    config = serializers.JSONField(required=False, allow_null=True, help_text="Inline config for 'rules' or 'sklearn'.")
    filter = serializers.JSONField(
        required=False,
        default="all",
        help_text='"all", "unlabeled", or {"unlabeled": true, "skill": "coding", "id_from": 1, "id_to": 500}.',
    )
    chunk_size = serializers.IntegerField(required=False, min_value=1, max_value=5000)


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Repeating a request with the same key returns the run it created.",
)


class PrelabelRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Pre-label runs of a project. Starting one returns 202 and the run; the same request while
    that run is active (or with the same Idempotency-Key) returns the same run."""

    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    queryset = PrelabelRun.objects.none()

    def get_queryset(self):
        return selectors.runs_of(project=self.request.project)

    def get_serializer_class(self):
        return PrelabelRunDetailSerializer if self.action == "retrieve" else PrelabelRunSerializer

    @extend_schema(
        request=RunStartInputSerializer, responses={202: PrelabelRunSerializer}, parameters=[IDEMPOTENCY_HEADER]
    )
    def create(self, request, *args, **kwargs) -> Response:
        data = RunStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run, _ = services.prelabel_run_start(
            project=request.project,
            actor=request.user,
            labeler=values["labeler"],
            config=values.get("config"),
            task_filter=values.get("filter", "all"),
            idempotency_key=request.headers.get("Idempotency-Key", "")[:200],
            chunk_size=values.get("chunk_size"),
        )
        run.refresh_from_db()
        return Response(PrelabelRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=PrelabelRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs) -> Response:
        run = services.prelabel_run_cancel(run=self.get_object(), actor=request.user)
        return Response(PrelabelRunSerializer(run).data)


def masked(config: dict) -> dict:
    return {k: (MASK if k in SECRET_KEYS and v else v) for k, v in (config or {}).items()}


class LabelerSerializer(serializers.ModelSerializer):
    config = serializers.JSONField(
        required=False, default=dict, help_text="Depends on kind; secrets (api_key) are shown masked."
    )

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be an object")
        return value

    class Meta:
        model = Labeler
        fields = ("id", "name", "kind", "config", "is_active", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")

    def to_representation(self, instance: Labeler) -> dict:
        data = super().to_representation(instance)
        data["config"] = masked(instance.config)
        return data


class LabelerViewSet(viewsets.ModelViewSet):
    """Labelers configured for the project (rules, the trained model, remote endpoints). Managers
    read them; only admins create, change or delete them."""

    serializer_class = LabelerSerializer
    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = Role.MANAGER
    write_role = Role.ADMIN
    action_roles = {"check": Role.MANAGER}
    queryset = Labeler.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return Labeler.objects.filter(project=self.request.project).order_by("name", "id")

    def _config(self, values: dict, instance: Labeler | None) -> dict:
        config = dict(values.get("config", instance.config if instance else {}) or {})
        for key in SECRET_KEYS:  # a masked secret sent back unchanged keeps the stored one
            if config.get(key) == MASK and instance is not None:
                config[key] = instance.config.get(key, "")
        return config

    def perform_create(self, serializer) -> None:
        values = serializer.validated_data
        serializer.instance = services.labeler_save(
            project=self.request.project,
            actor=self.request.user,
            name=values["name"],
            kind=values["kind"],
            config=self._config(values, None),
            is_active=values.get("is_active", True),
        )

    def perform_update(self, serializer) -> None:
        instance, values = serializer.instance, serializer.validated_data
        serializer.instance = services.labeler_save(
            project=self.request.project,
            actor=self.request.user,
            name=values.get("name", instance.name),
            kind=values.get("kind", instance.kind),
            config=self._config(values, instance),
            is_active=values.get("is_active", instance.is_active),
            labeler=instance,
        )

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "LabelerCheck", {"ok": serializers.BooleanField(), "detail": serializers.JSONField()}
        ),
    )
    @action(detail=True, methods=["post"])
    def check(self, request, *args, **kwargs) -> Response:
        """Ask a Label Studio backend for ``GET /health`` (other kinds answer ok)."""
        labeler = self.get_object()
        if labeler.kind != LabelerKind.LS_BACKEND:
            return Response({"ok": True, "detail": None})
        backend = LabelStudioBackendLabeler(
            config=labeler.config,
            context=LabelerContext(
                project_id=request.project.pk, schema=request.project.label_schema, model_version=""
            ),
        )
        try:
            return Response({"ok": True, "detail": backend.health()})
        except LabelerUnavailable as exc:
            return Response({"ok": False, "detail": str(exc)})


class TrainedModelSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(read_only=True)

    class Meta:
        model = TrainedModel
        fields = ("id", "version", "model_version", "annotation_count", "info", "sha256", "created_at")
        read_only_fields = fields


class TrainedModelViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The project's scikit-learn models. ``POST`` queues a training job (202)."""

    serializer_class = TrainedModelSerializer
    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    queryset = TrainedModel.objects.none()

    def get_queryset(self):
        return TrainedModel.objects.filter(project=self.request.project).order_by("-version")

    @extend_schema(
        request=None, responses={202: inline_serializer("TrainQueued", {"queued": serializers.BooleanField()})}
    )
    def create(self, request, *args, **kwargs) -> Response:
        queued = training.model_train_request(project=request.project, actor=request.user)
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)


class SpanStatsSerializer(serializers.Serializer):
    predicted = serializers.IntegerField()
    submitted = serializers.IntegerField()
    matched = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)


class AcceptanceSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    annotations = serializers.IntegerField(help_text="Submitted annotations that started from this version.")
    accepted = serializers.IntegerField(help_text="Submitted unchanged.")
    edited = serializers.IntegerField()
    discarded = serializers.IntegerField()
    accepted_rate = serializers.FloatField(allow_null=True)
    fields = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    spans = SpanStatsSerializer()


class PrelabelStatsView(APIView):
    """How pre-labels were used, per model version."""

    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = Role.MANAGER

    @extend_schema(responses=AcceptanceSerializer(many=True))
    def get(self, request, project_pk: int) -> Response:
        return Response(AcceptanceSerializer(selectors.prediction_acceptance(request.project), many=True).data)


ROUTES = [
    (r"projects/(?P<project_pk>\d+)/prelabel-runs", PrelabelRunViewSet, "project-prelabel-run"),
    (r"projects/(?P<project_pk>\d+)/labelers", LabelerViewSet, "project-labeler"),
    (r"projects/(?P<project_pk>\d+)/prelabel-models", TrainedModelViewSet, "project-prelabel-model"),
]
URLS = [
    path("projects/<int:project_pk>/prelabel-stats/", PrelabelStatsView.as_view(), name="prelabel-stats"),
]
