"""REST API for imports: upload a file (multipart) or post a small JSON batch, then follow the job.

``POST /projects/{id}/imports/`` answers 202 with the job (with Celery eager, small imports have
finished by then); ``GET .../imports/{job_id}/`` shows status, counts and errors, and
``GET .../imports/{job_id}/errors.csv`` downloads the per-row error report.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from annotator.api import payload_too_large
from annotator.parsers import JSONParser
from projects.core.exceptions import ValidationFailed
from projects.core.models import Role
from projects.core.permissions import ProjectRolePermission
from projects.imports import jobs, selectors, services
from projects.imports.models import ImportFormat, ImportJob
from projects.imports.options import LABELS_AS_CHOICES, SPLIT_CHOICES
from projects.imports.uploads import ImportUploadHandler

MAX_JSON_ARTICLES = 10_000
JSON_FORMATS = ("jsonl", "labelstudio", "doccano")


class ImportJobSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    errors_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = (
            "id",
            "project",
            "status",
            "format",
            "compression",
            "options",
            "file_name",
            "file_size",
            "rows_read",
            "rows_created",
            "rows_updated",
            "rows_unchanged",
            "rows_failed",
            "tasks_created",
            "errors",
            "errors_truncated",
            "message",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "errors_url",
        )
        read_only_fields = fields

    def get_errors_url(self, job: ImportJob) -> str:
        return f"/api/v1/projects/{job.project_id}/imports/{job.pk}/errors.csv"


class ImportOptionsSerializer(serializers.Serializer):
    """Options shared by both ways of posting an import (all optional)."""

    format = serializers.ChoiceField(
        choices=ImportFormat.choices, required=False, help_text="Detected from the file name and content if omitted."
    )
    text_field = serializers.CharField(required=False, help_text='Key or CSV column with the text (default "text").')
    split = serializers.ChoiceField(
        choices=SPLIT_CHOICES, required=False, help_text="One task per article or per paragraph."
    )
    skill = serializers.CharField(required=False, help_text="A required skill for every task.")
    skill_field = serializers.CharField(required=False, help_text="Key or column holding each row's required skill.")
    gold_field = serializers.CharField(required=False, help_text='Key or column with a gold answer (default "gold").')
    payload_fields = serializers.CharField(
        required=False,
        help_text="Comma-separated keys copied into the task payload (default response,response_a,response_b).",
    )
    labels_as = serializers.ChoiceField(choices=LABELS_AS_CHOICES, required=False)
    model_version = serializers.CharField(required=False)
    all_or_nothing = serializers.BooleanField(required=False)
    batch_size = serializers.IntegerField(required=False, min_value=1, max_value=10000)


class ImportUploadSerializer(ImportOptionsSerializer):
    file = serializers.FileField(help_text="JSONL, JSON, CSV, TSV, TXT, ZIP, Label Studio or doccano; may be gzipped.")


class ImportBatchSerializer(ImportOptionsSerializer):
    payload_fields = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    articles = serializers.ListField(child=serializers.JSONField(), max_length=MAX_JSON_ARTICLES, allow_empty=False)


class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Import jobs of a project (managers and admins)."""

    serializer_class = ImportJobSerializer
    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = write_role = Role.MANAGER
    parser_classes = [MultiPartParser, JSONParser]
    queryset = ImportJob.objects.none()

    def get_queryset(self):
        return selectors.imports_of(project=self.request.project)

    def initialize_request(self, request, *args, **kwargs):
        # Before anything reads the body (the CSRF check does), so the file streams to disk.
        if request.method == "POST":
            self.upload_handler = ImportUploadHandler(request)
            request.upload_handlers = [self.upload_handler]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": ImportUploadSerializer, "application/json": ImportBatchSerializer},
        responses={
            202: ImportJobSerializer,
            400: OpenApiResponse(description="The file cannot be imported (code names why: bad_encoding, ...)."),
            413: OpenApiResponse(description="The file is larger than IMPORT_MAX_UPLOAD_BYTES."),
        },
    )
    def create(self, request, project_pk: int) -> Response:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if request.content_type.startswith("multipart/"):
            return self._create_upload(request, length)
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return payload_too_large(
                f"A JSON body may be at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; "
                "upload larger imports as a file (multipart field 'file')."
            )
        data = ImportBatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        articles = values.pop("articles")
        fmt = values.pop("format", "jsonl")
        if fmt not in JSON_FORMATS:
            raise ValidationFailed(
                f"A JSON body takes format {', '.join(JSON_FORMATS)}.", fields={"format": "not for a JSON body"}
            )
        name = "articles.json" if fmt == "labelstudio" else "articles.jsonl"
        path = services.new_upload_path(name)
        with open(path, "w", encoding="utf-8") as fh:
            if fmt == "labelstudio":
                json.dump(articles, fh, ensure_ascii=False)
            else:
                for article in articles:
                    fh.write(json.dumps(article, ensure_ascii=False) + "\n")
        return self._start(request, path=path, name=name, fmt=fmt, options=values)

    def _create_upload(self, request, length: int) -> Response:
        handler: ImportUploadHandler = self.upload_handler
        limit = settings.IMPORT_MAX_UPLOAD_BYTES
        if not handler.too_large:
            files = request.FILES  # parses the body: the file streams to disk
        if handler.too_large:
            handler.discard()
            return payload_too_large(
                f"The file is larger than the import limit of {limit} bytes ({limit // 2**20} MiB)."
            )
        upload = files.get("file")
        if upload is None or not hasattr(upload, "stored_path"):
            handler.discard()
            raise ValidationFailed(
                "Send the file to import in the multipart field 'file'.", fields={"file": "required"}
            )
        options = {k: v for k, v in request.data.items() if k not in ("file", "format")}
        return self._start(
            request, path=upload.stored_path, name=upload.name, fmt=request.data.get("format") or None, options=options
        )

    def _start(self, request, *, path, name: str, fmt: str | None, options: dict) -> Response:
        job = services.import_create(
            project=request.project,
            actor=request.user,
            path=Path(path),
            file_name=name,
            fmt=fmt,
            options=options,
        )
        jobs.import_enqueue(job.pk)
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None, responses={200: ImportJobSerializer, 409: OpenApiResponse(description="Already finished.")}
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, project_pk: int, pk: int) -> Response:
        job = services.import_cancel(job=self.get_object(), actor=request.user)
        return Response(ImportJobSerializer(job).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def errors_csv(self, request, project_pk: int, pk: int) -> HttpResponse:
        job = self.get_object()
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["line", "file", "message"])
        for error in job.errors:
            writer.writerow([error.get("line", ""), error.get("file", ""), error.get("message", "")])
        if job.errors_truncated:
            writer.writerow(["", "", f"... and {job.errors_truncated} more errors not stored"])
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
        return response


ROUTES = [(r"projects/(?P<project_pk>\d+)/imports", ImportViewSet, "project-import")]
URLS = [
    path(
        "projects/<int:project_pk>/imports/<int:pk>/errors.csv",
        ImportViewSet.as_view({"get": "errors_csv"}),
        name="imports-errors-csv",
    )
]
