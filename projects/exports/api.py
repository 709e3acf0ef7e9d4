"""REST API for exports: the streamed download, snapshots (build, list, download, diff) and webhooks."""

from __future__ import annotations

from django.http import FileResponse, StreamingHttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from projects.core.exceptions import NotFound
from projects.core.models import Role
from projects.core.permissions import ProjectRolePermission
from projects.exports import selectors, services, webhooks
from projects.exports.filters import parse_after, parse_options
from projects.exports.formats import FORMAT_NAMES, FORMATS
from projects.exports.models import ExportJob, ExportStatus, Webhook, WebhookDelivery, WebhookEvent


class IgnoreFormatParam(DefaultContentNegotiation):
    """``?format=`` names the export format here, not a DRF renderer: always answer errors in JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


FILTER_PARAMETERS = [
    OpenApiParameter("format", str, enum=list(FORMAT_NAMES), description="Export format (default jsonl)."),
    OpenApiParameter("mode", str, enum=["consolidated", "raw"], description="One row per task, or per annotation."),
    OpenApiParameter("status", str, enum=["submitted", "reviewed", "accepted"], description="Annotations to use."),
    OpenApiParameter("annotator", str, many=True, description="Usernames (repeat or comma-separate)."),
    OpenApiParameter("skill", str, description="Only tasks requiring this skill."),
    OpenApiParameter("since", str, description="Annotations submitted at or after (ISO date/datetime)."),
    OpenApiParameter("until", str, description="Annotations submitted before (a bare date includes that day)."),
    OpenApiParameter("gold", str, enum=["include", "exclude", "only"], description="Gold tasks (default include)."),
    OpenApiParameter("min_agreement", float, description="Only tasks with agreement at least this (0..1)."),
    OpenApiParameter("ties", str, enum=["exclude", "include"], description="preference: tie / both_bad rows."),
    OpenApiParameter("consensus", str, enum=["majority", "dawid_skene"], description="Consolidation method."),
]


def _wants_gzip(request) -> tuple[bool, bool]:
    """(compress, as_content_encoding): ``?compress=gzip`` gives a .gz file, Accept-Encoding a
    transparently compressed stream."""
    if request.query_params.get("compress") == "gzip":
        return True, False
    accepted = request.META.get("HTTP_ACCEPT_ENCODING", "")
    return any(part.split(";")[0].strip() == "gzip" for part in accepted.split(",")), True


class ExportStreamView(APIView):
    """Stream the project's labeled data in the chosen format (managers and admins)."""

    permission_classes = [IsAuthenticated, ProjectRolePermission]
    content_negotiation_class = IgnoreFormatParam
    read_role = Role.MANAGER

    @extend_schema(
        operation_id="projects_export_stream",
        parameters=[
            *FILTER_PARAMETERS,
            OpenApiParameter("after", int, description="Resume: only tasks with a larger id."),
            OpenApiParameter("compress", str, enum=["gzip"], description="Send a .gz file."),
        ],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request, project_pk: int) -> StreamingHttpResponse:
        project = request.project
        options = parse_options(request.query_params, formats=FORMAT_NAMES)
        after = parse_after(request.query_params.get("after"))
        compress, as_encoding = _wants_gzip(request)
        stream = services.export_download_start(
            project=project, actor=request.user, options=options, after=after, gzip=compress
        )
        fmt = FORMATS[options.format]
        response = StreamingHttpResponse(stream, content_type=fmt.content_type)
        filename = services.safe_filename(project, options, gzip=compress and not as_encoding)
        if compress and as_encoding:
            response["Content-Encoding"] = "gzip"
        elif compress:
            response["Content-Type"] = "application/gzip"
        response["Vary"] = "Accept-Encoding"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        return response


class ExportJobSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = (
            "id",
            "format",
            "mode",
            "filters",
            "status",
            "row_count",
            "task_count",
            "annotation_count",
            "size_bytes",
            "sha256",
            "schema_version",
            "guidelines_version",
            "error",
            "attempts",
            "created_by",
            "created_at",
            "updated_at",
            "started_at",
            "finished_at",
            "download_url",
        )
        read_only_fields = fields

    def get_download_url(self, job: ExportJob) -> str | None:
        if job.status != ExportStatus.DONE:
            return None
        return f"/api/v1/projects/{job.project_id}/exports/{job.pk}/download/"


class ExportCreateInputSerializer(serializers.Serializer):
    """Same names and values as the streaming endpoint's query parameters."""

    format = serializers.ChoiceField(choices=list(FORMAT_NAMES), required=False)
    mode = serializers.ChoiceField(choices=["consolidated", "raw"], required=False)
    status = serializers.ChoiceField(choices=["submitted", "reviewed", "accepted"], required=False)
    annotator = serializers.ListField(child=serializers.CharField(), required=False)
    skill = serializers.CharField(required=False)
    since = serializers.CharField(required=False)
    until = serializers.CharField(required=False)
    gold = serializers.ChoiceField(choices=["include", "exclude", "only"], required=False)
    min_agreement = serializers.FloatField(required=False)
    ties = serializers.ChoiceField(choices=["exclude", "include"], required=False)
    consensus = serializers.ChoiceField(choices=["majority", "dawid_skene"], required=False)


DIFF_SERIALIZER = inline_serializer(
    "ExportDiff",
    {
        "from": serializers.IntegerField(),
        "to": serializers.IntegerField(),
        "added": serializers.ListField(child=serializers.IntegerField()),
        "removed": serializers.ListField(child=serializers.IntegerField()),
        "relabeled": serializers.ListField(child=serializers.IntegerField()),
        "unchanged": serializers.IntegerField(),
        "schema_changed": serializers.BooleanField(),
        "guidelines_changed": serializers.BooleanField(),
    },
)


class ExportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Snapshots: immutable, checksummed export files built by a job."""

    serializer_class = ExportJobSerializer
    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    export_scope_allows_write = True
    queryset = ExportJob.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ExportJob.objects.none()
        return selectors.exports_for_project(project=self.request.project)

    @extend_schema(request=ExportCreateInputSerializer, responses={202: ExportJobSerializer})
    def create(self, request, project_pk: str) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        options = parse_options(data, formats=FORMAT_NAMES)
        job, _ = services.export_snapshot_start(
            project=request.project,
            actor=request.user,
            options=options,
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        return Response(ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[OpenApiParameter("file", str, enum=["data", "card"], description="card: the hf README.md")],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def download(self, request, project_pk: str, pk: str) -> FileResponse:
        job = self.get_object()
        card = request.query_params.get("file") == "card"
        handle = services.export_snapshot_open(job=job, actor=request.user, card=card)
        ext = "md" if card else FORMATS[job.format].extension
        name = f"project-{job.project_id}-export-{job.pk}{'-README' if card else ''}.{ext}"
        response = FileResponse(handle, as_attachment=True, filename=name)
        response["Content-Type"] = "text/markdown; charset=utf-8" if card else FORMATS[job.format].content_type
        response["X-Content-Type-Options"] = "nosniff"
        response["ETag"] = f'"{job.sha256}"'
        return response

    @extend_schema(responses=DIFF_SERIALIZER)
    @action(detail=True, methods=["get"], url_path=r"diff/(?P<other>[0-9]+)")
    def diff(self, request, project_pk: str, pk: str, other: str) -> Response:
        a = self.get_object()
        b = self.get_queryset().filter(pk=int(other)).first()
        if b is None:
            raise NotFound("The second export was not found in this project.")
        return Response(services.export_diff(a=a, b=b))


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices), allow_empty=False)
    rotate_secret = serializers.BooleanField(write_only=True, required=False, help_text="Issue a new secret.")

    class Meta:
        model = Webhook
        fields = ("id", "url", "events", "is_active", "secret", "rotate_secret", "created_at", "updated_at")
        read_only_fields = ("id", "secret", "created_at", "updated_at")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "event",
            "status",
            "attempts",
            "response_status",
            "error",
            "body",
            "created_at",
            "last_attempt_at",
            "delivered_at",
        )
        read_only_fields = fields


class WebhookViewSet(viewsets.ModelViewSet):
    """A project's webhooks (managers and admins): signed POSTs on annotation, task and export events."""

    serializer_class = WebhookSerializer
    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    queryset = Webhook.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Webhook.objects.none()
        return selectors.webhooks_for_project(project=self.request.project)

    def perform_create(self, serializer) -> None:
        data = serializer.validated_data
        serializer.instance = webhooks.webhook_create(
            project=self.request.project,
            actor=self.request.user,
            url=data["url"],
            events=data["events"],
            is_active=data.get("is_active", True),
        )

    def perform_update(self, serializer) -> None:
        serializer.instance = webhooks.webhook_update(
            webhook=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance) -> None:
        webhooks.webhook_delete(webhook=instance, actor=self.request.user)

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, project_pk: str, pk: str) -> Response:
        page = self.paginate_queryset(selectors.webhook_deliveries(webhook=self.get_object()))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


ROUTES = [
    (r"projects/(?P<project_pk>[0-9]+)/exports", ExportJobViewSet, "project-exports"),
    (r"projects/(?P<project_pk>[0-9]+)/webhooks", WebhookViewSet, "project-webhooks"),
]
URLS = [path("projects/<int:project_pk>/export/", ExportStreamView.as_view(), name="exports-stream")]
