"""Review pages: the reviewer's next annotation with accept / reject / fix, disagreement
adjudication with annotations side by side, and the annotator's list of work returned to them.

Article text and labels are untrusted: spans are highlighted with ``format_html`` per segment,
never by marking user text safe.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from projects.annotations import reviews, selectors
from projects.annotations.models import Annotation, TaskLabel, Verdict
from projects.assignment.models import Task
from projects.core.exceptions import DomainError
from projects.core.models import Role
from projects.web.views.common import project_for_page

SPAN_COLOURS = 6
DONE = {Verdict.ACCEPT: "accepted", Verdict.REJECT: "rejected and sent back to its annotator", Verdict.FIX: "fixed"}


def highlight_spans(text: str, spans: list[dict], labels: list[str] | None = None) -> SafeString:
    """The text with each span wrapped in ``<mark>``; every piece is escaped by ``format_html``."""
    order = {label: i for i, label in enumerate(labels or [])}
    bounds = {0, len(text)}
    for span in spans:
        bounds.update(b for b in (span.get("start"), span.get("end")) if isinstance(b, int) and 0 <= b <= len(text))
    points = sorted(bounds)
    parts = []
    for start, end in zip(points, points[1:], strict=False):
        covering = sorted({s["label"] for s in spans if s.get("start", 0) <= start and s.get("end", 0) >= end})
        piece = text[start:end]
        if covering:
            colour = order.get(covering[0], len(order)) % SPAN_COLOURS
            parts.append(
                format_html(
                    '<mark class="span span-c{}" title="{}">{}</mark>', colour, " + ".join(map(str, covering)), piece
                )
            )
        else:
            parts.append(format_html("{}", piece))
    return format_html_join("", "{}", ((part,) for part in parts))


def _display(field: dict, value) -> str:
    if value is None or value == [] or value == {}:
        return "—"
    ftype = field["type"]
    if ftype == "choice":
        return ", ".join(value) if isinstance(value, list) else str(value)
    if ftype == "rating":
        return ", ".join(f"{criterion}: {score}" for criterion, score in value.items())
    if ftype == "pairwise":
        return value.get("choice", "") + (f" ({value['reason']})" if value.get("reason") else "")
    if ftype == "spans":
        return "; ".join(f"{s['label']}: {s.get('text', '')} [{s['start']}–{s['end']}]" for s in value)
    return str(value)


def describe_result(schema: dict, result: dict, text: str, differing: list[str] | tuple = ()) -> list[dict]:
    """One row per schema field: its title, a plain-text value, and highlighted text for spans."""
    rows = []
    for field in schema.get("fields", []):
        value = (result or {}).get(field["name"])
        rows.append(
            {
                "name": field["name"],
                "title": field.get("title") or field["name"],
                "type": field["type"],
                "value": _display(field, value),
                "highlighted": highlight_spans(text, value or [], field.get("labels"))
                if field["type"] == "spans"
                else None,
                "differs": field["name"] in differing,
            }
        )
    return rows


def _task_label_url(task_id: int) -> str | None:
    try:  # the labeling page, when the labeling feature is installed
        return reverse("web-task-label", args=[task_id])
    except NoReverseMatch:
        return None


# --- reviewing -----------------------------------------------------------------------------------


@login_required
def review_next(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.REVIEWER)
    annotation = reviews.review_next_for_reviewer(project=project, reviewer=request.user)
    if annotation is not None:
        return redirect("web-review-annotation", project_id=project.pk, annotation_id=annotation.pk)
    return render(
        request,
        "web/review/empty.html",
        {"project": project, "membership": membership, "counts": selectors.review_counts(project=project)},
    )


def _review_context(project, membership, annotation: Annotation, request) -> dict:
    text = annotation.task.text
    schema = project.label_schema
    current = reviews.effective_result(annotation)
    return {
        "project": project,
        "membership": membership,
        "annotation": annotation,
        "own": annotation.user_id == request.user.pk,
        "fields": describe_result(schema, annotation.result, text),
        "reviewed_fields": describe_result(schema, annotation.reviewed_result, text)
        if annotation.reviewed_result is not None and annotation.reviewed_result != annotation.result
        else None,
        "plain_text": text,
        "history": selectors.reviews_of(annotation=annotation),
        "fix_json": json.dumps(current, indent=2, ensure_ascii=False),
        "comment": "",
        "error": None,
    }


@login_required
def review_annotation(request: HttpRequest, project_id: int, annotation_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.REVIEWER)
    annotation = (
        Annotation.objects.select_related("task__article", "user").filter(pk=annotation_id, project=project).first()
    )
    if annotation is None or annotation.status != "submitted":
        raise Http404("Annotation not found.")
    context = _review_context(project, membership, annotation, request)
    if request.method != "POST":
        return render(request, "web/review/annotation.html", context)
    verdict = request.POST.get("verdict", "")
    comment = request.POST.get("comment", "")
    corrected = None
    try:
        if verdict == Verdict.FIX:
            raw = request.POST.get("corrected_result", "")
            context["fix_json"] = raw
            try:
                corrected = json.loads(raw)
            except ValueError as exc:
                raise DomainError(f"The corrected result is not valid JSON: {exc}.") from None
        reviews.review_submit(
            annotation=annotation, reviewer=request.user, verdict=verdict, comment=comment, corrected_result=corrected
        )
    except DomainError as exc:
        context.update(comment=comment, error=exc.message, error_fields=exc.fields, failed_verdict=verdict)
        return render(request, "web/review/annotation.html", context, status=400)
    messages.success(request, f"Annotation {annotation.pk} {DONE[verdict]}.")
    return redirect("web-review-next", project_id=project.pk)


@login_required
def returned_to_me(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.ANNOTATOR)
    rows = [
        {
            "annotation": annotation,
            "review": selectors.reviews_of(annotation=annotation).last(),
            "fix_url": _task_label_url(annotation.task_id),
        }
        for annotation in selectors.annotations_returned_to(project=project, user=request.user)[:200]
    ]
    return render(request, "web/review/returned.html", {"project": project, "membership": membership, "rows": rows})


# --- adjudication -------------------------------------------------------------------------------


@login_required
def adjudication_list(request: HttpRequest, project_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.REVIEWER)
    try:
        after = max(int(request.GET.get("after", 0)), 0)
    except ValueError:
        after = 0
    rows, next_after = selectors.tasks_with_disagreement(project=project, after=after, limit=50)
    return render(
        request,
        "web/review/adjudication_list.html",
        {"project": project, "membership": membership, "rows": rows, "next_after": next_after},
    )


@login_required
def adjudicate_task(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    project, membership = project_for_page(request, project_id, Role.REVIEWER)
    task = Task.objects.select_related("article").filter(pk=task_id, project=project).first()
    if task is None:
        raise Http404("Task not found.")
    error = None
    merged_json = None
    if request.method == "POST":
        pick = request.POST.get("pick")
        try:
            if pick:
                reviews.task_adjudicate(
                    task=task, actor=request.user, pick=int(pick), comment=request.POST.get("comment", "")
                )
            else:
                merged_json = request.POST.get("result", "")
                try:
                    merged = json.loads(merged_json)
                except ValueError as exc:
                    raise DomainError(f"The merged result is not valid JSON: {exc}.") from None
                reviews.task_adjudicate(
                    task=task, actor=request.user, result=merged, comment=request.POST.get("comment", "")
                )
        except (DomainError, ValueError) as exc:
            error = getattr(exc, "message", str(exc))
        else:
            messages.success(request, f"Task {task.pk} adjudicated.")
            return redirect("web-adjudication", project_id=project.pk)
    annotations, differing = selectors.task_disagreement(task=task)
    text = task.text
    columns = [
        {
            "annotation": a,
            "fields": describe_result(project.label_schema, reviews.effective_result(a), text, differing),
        }
        for a in annotations
    ]
    label = TaskLabel.objects.filter(task=task).select_related("decided_by").first()
    if merged_json is None:
        start = label.result if label else (reviews.effective_result(annotations[0]) if annotations else {})
        merged_json = json.dumps(start, indent=2, ensure_ascii=False)
    return render(
        request,
        "web/review/adjudicate_task.html",
        {
            "project": project,
            "membership": membership,
            "task": task,
            "columns": columns,
            "differing": differing,
            "label": label,
            "label_fields": describe_result(project.label_schema, label.result, text) if label else None,
            "merged_json": merged_json,
            "error": error,
            "own": any(a.user_id == request.user.pk for a in annotations),
        },
        status=400 if error else 200,
    )


urlpatterns = [
    path("projects/<int:project_id>/review/", review_next, name="web-review-next"),
    path("projects/<int:project_id>/review/<int:annotation_id>/", review_annotation, name="web-review-annotation"),
    path("projects/<int:project_id>/returned/", returned_to_me, name="web-review-returned"),
    path("projects/<int:project_id>/adjudicate/", adjudication_list, name="web-adjudication"),
    path("projects/<int:project_id>/adjudicate/<int:task_id>/", adjudicate_task, name="web-adjudicate-task"),
]
