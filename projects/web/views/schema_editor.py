"""The label schema editor for managers and admins: JSON with server-side validation, a live
preview of the labeling form, and import of a Label Studio labeling config (XML)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from projects.annotations.models import Annotation
from projects.assignment.models import Task
from projects.core.exceptions import DomainError
from projects.core.labelconfig import labelconfig_to_schema
from projects.core.models import Project, Role
from projects.core.schema import validate_schema
from projects.core.services import project_update
from projects.web.views.common import project_for_page
from projects.web.views.labeling import form_data

SAMPLE_TEXT = "Elena Marchetti met the Quantix board in Lyon on Tuesday to discuss the merger."
SAMPLE_PAYLOAD = {
    "response": "Elena met Quantix in Lyon.",
    "response_a": "Quantix merger talks",
    "response_b": "Meeting",
}


def _preview(project: Project, schema: dict) -> dict:
    task = Task.objects.filter(project=project).select_related("article").order_by("id").first()
    if task is None:
        return form_data(schema=schema, text=SAMPLE_TEXT, title="Sample article", payload=SAMPLE_PAYLOAD)
    return form_data(schema=schema, text=task.text[:5000], title=task.article.title, payload=task.payload)


def _error(exc: DomainError) -> JsonResponse:
    return JsonResponse({"ok": False, "message": exc.message, "fields": exc.fields}, status=400)


def _body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise DomainError("The request body must be a JSON object.")
    return body


@login_required
def schema_editor(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    text = json.dumps(project.label_schema, indent=2, ensure_ascii=False)
    if request.method == "POST":
        text = request.POST.get("schema", "")
        try:
            schema = json.loads(text)
        except ValueError as exc:
            messages.error(request, f"The schema is not valid JSON: {exc}.")
        else:
            try:
                before = project.schema_version
                project = project_update(project=project, actor=request.user, label_schema=schema)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                if project.schema_version != before:
                    messages.success(request, f"Label schema saved (version {project.schema_version}).")
                else:
                    messages.info(request, "No changes.")
                return redirect("web-schema-editor", project.pk)
    return render(
        request,
        "web/labeling/schema_editor.html",
        {
            "project": project,
            "schema_text": text,
            "annotation_count": Annotation.objects.filter(project=project).count(),
            "preview": _preview(project, project.label_schema),
        },
    )


@login_required
@require_POST
def schema_check(request: HttpRequest, project_id: int) -> JsonResponse:
    """Validate a schema without saving it; answers with the preview data when it is valid."""
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    try:
        schema = validate_schema(_body(request).get("schema"))
    except DomainError as exc:
        return _error(exc)
    return JsonResponse({"ok": True, "schema": schema, "preview": _preview(project, schema)})


@login_required
@require_POST
def schema_import_labelstudio(request: HttpRequest, project_id: int) -> JsonResponse:
    """Convert a Label Studio labeling config (XML) to a schema for the editor; nothing is saved."""
    project, _ = project_for_page(request, project_id, Role.MANAGER)
    try:
        config = _body(request).get("config")
        if not isinstance(config, str) or not config.strip():
            raise DomainError("Paste a Label Studio labeling config (XML).", fields={"config": "required"})
        converted = labelconfig_to_schema(config)
    except DomainError as exc:
        return _error(exc)
    return JsonResponse(
        {
            "ok": True,
            "schema": converted.schema,
            "warnings": converted.warnings,
            "preview": _preview(project, converted.schema),
        }
    )


urlpatterns = [
    path("projects/<int:project_id>/schema/", schema_editor, name="web-schema-editor"),
    path("projects/<int:project_id>/schema/check/", schema_check, name="web-schema-check"),
    path("projects/<int:project_id>/schema/import-labelstudio/", schema_import_labelstudio, name="web-schema-import"),
]
