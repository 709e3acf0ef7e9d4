"""REST API for imports: upload a file (multipart) or post a small JSON batch, then follow the job.

``POST /projects/{id}/imports/`` answers 202 with the job (with Celery eager, small imports have
finished by then); ``GET .../imports/{job_id}/`` shows status, counts and errors, and
``GET .../imports/{job_id}/errors.csv`` downloads the per-row error report.

An ``Idempotency-Key`` header makes the POST safe to retry: the same key from the same user on the
same project within 24 hours answers 200 with the job the first request created (the retry's file
is discarded), or 422 when the request differs (another file, format or options). A unique
constraint on (project, user, key) decides between two concurrent requests: exactly one job.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError
from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
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
from projects.imports.errors import IdempotencyKeyReused
from projects.imports.models import IDEMPOTENCY_HOURS, ImportFormat, ImportJob
from projects.imports.options import LABELS_AS_CHOICES, SPLIT_CHOICES
from projects.imports.uploads import ImportUploadHandler

MAX_JSON_ARTICLES = 10_000
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
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
            "attempts",
            "created_by",
            "created_at",
            "updated_at",
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
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=False,
                description=(
                    f"Makes the request safe to retry (1 to {MAX_KEY_LENGTH} printable ASCII characters). The same "
                    f"key from the same user on the same project within {IDEMPOTENCY_HOURS} hours answers 200 "
                    "with the job the first request created instead of importing again; with a different file, "
                    "format or options it answers 422 (code idempotency_key_reused)."
                ),
            )
        ],
        responses={
            200: OpenApiResponse(ImportJobSerializer, description="A retry (same Idempotency-Key): the original job."),
            202: ImportJobSerializer,
            400: OpenApiResponse(description="The file cannot be imported (code names why: bad_encoding, ...)."),
            413: OpenApiResponse(description="The file is larger than IMPORT_MAX_UPLOAD_BYTES."),
            422: OpenApiResponse(description="The Idempotency-Key was used for a different request."),
        },
    )
    def create(self, request, project_pk: int) -> Response:
        key = _idempotency_key(request)
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
        fingerprint = _fingerprint({"json": request.data}) if key else ""
        if key and (replay := self._replay(request, key, fingerprint)):
            return replay
        name = "articles.json" if fmt == "labelstudio" else "articles.jsonl"
        path = services.new_upload_path(name)
        with open(path, "w", encoding="utf-8") as fh:
            if fmt == "labelstudio":
                json.dump(articles, fh, ensure_ascii=False)
            else:
                for article in articles:
                    fh.write(json.dumps(article, ensure_ascii=False) + "\n")
        return self._start(request, path=path, name=name, fmt=fmt, options=values, key=key, fingerprint=fingerprint)

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
        fmt = request.data.get("format") or None
        key = _idempotency_key(request)
        fingerprint = ""
        if key:
            fingerprint = _fingerprint(
                {"file": handler.digest.hexdigest(), "name": upload.name, "format": fmt, "options": options}
            )
            try:
                replay = self._replay(request, key, fingerprint)
            except IdempotencyKeyReused:
                handler.discard()
                raise
            if replay is not None:
                handler.discard()
                return replay
        return self._start(
            request,
            path=upload.stored_path,
            name=upload.name,
            fmt=fmt,
            options=options,
            key=key,
            fingerprint=fingerprint,
        )

    def _replay(self, request, key: str, fingerprint: str) -> Response | None:
        """The answer to a retry: the job an earlier request with ``key`` created, or 422; None if there is none."""
        job = services.import_for_key(project=request.project, actor=request.user, key=key)
        if job is None:
            return None
        if job.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"The {IDEMPOTENCY_HEADER} {key[:80]!r} was already used for a different import (job {job.pk}) "
                f"in the last {IDEMPOTENCY_HOURS} hours; send a new key for a new import.",
                fields={IDEMPOTENCY_HEADER: "used for a different request"},
            )
        response = Response(ImportJobSerializer(job).data, status=status.HTTP_200_OK)
        response["Idempotent-Replayed"] = "true"
        return response

    def _start(
        self, request, *, path, name: str, fmt: str | None, options: dict, key: str = "", fingerprint: str = ""
    ) -> Response:
        try:
            job = services.import_create(
                project=request.project,
                actor=request.user,
                path=Path(path),
                file_name=name,
                fmt=fmt,
                options=options,
                idempotency_key=key,
                fingerprint=fingerprint,
            )
        except IntegrityError:
            if not key:
                raise
            # A concurrent request with the same key created its job first: answer with that one.
            services.discard_upload(path)
            replay = self._replay(request, key, fingerprint)
            if replay is None:
                raise
            return replay
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


def _idempotency_key(request) -> str:
    key = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if key is None:
        return ""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all("\x21" <= c <= "\x7e" for c in key):
        raise ValidationFailed(
            f"The {IDEMPOTENCY_HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters without spaces.",
            fields={IDEMPOTENCY_HEADER: "invalid"},
        )
    return key


def _fingerprint(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


ROUTES = [(r"projects/(?P<project_pk>\d+)/imports", ImportViewSet, "project-import")]
URLS = [
    path(
        "projects/<int:project_pk>/imports/<int:pk>/errors.csv",
        ImportViewSet.as_view({"get": "errors_csv"}),
        name="imports-errors-csv",
    )
]
