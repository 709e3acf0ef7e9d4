"""Writes one batch of mapped rows: articles (upsert by external id), tasks for new articles,
predictions (upsert by task and model version) and annotations for new tasks.

A handful of queries per batch whatever its size: one SELECT of the batch's ids, one INSERT ...
ON CONFLICT for new and changed articles, one INSERT of tasks, and, only when the batch carries
labels, a few more for predictions, annotations and their assignments. Works on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

from django.utils import timezone

from projects.annotations.models import Annotation, AnnotationStatus
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.models import Project
from projects.documents.models import Article
from projects.imports.mapping import ArticleRow, paragraphs
from projects.imports.options import ImportOptions
from projects.prelabel.models import Prediction

ARTICLE_FIELDS = ("title", "text", "source", "url", "published_at", "domain", "meta")


class BatchWriter:
    def __init__(self, *, project: Project, options: ImportOptions, user_id: int | None, member_emails: dict) -> None:
        self.project = project
        self.options = options
        self.user_id = user_id
        self.member_emails = member_emails

    def write(self, rows: list[ArticleRow]) -> dict[str, int]:
        project = self.project
        existing = {
            values[0]: values[1:]
            for values in Article.objects.filter(
                project=project, external_id__in=[r.external_id for r in rows]
            ).values_list("external_id", "id", *ARTICLE_FIELDS)
        }
        new_rows, changed, unchanged = [], [], 0
        for row in rows:
            old = existing.get(row.external_id)
            if old is None:
                new_rows.append(row)
            elif old[1:] != tuple(getattr(row, f) for f in ARTICLE_FIELDS):
                changed.append(row)
            else:
                unchanged += 1
        to_write = new_rows + changed
        articles = [
            Article(
                project=project,
                external_id=r.external_id,
                title=r.title,
                text=r.text,
                source=r.source,
                url=r.url,
                published_at=r.published_at,
                domain=r.domain,
                meta=r.meta,
            )
            for r in to_write
        ]
        if articles:
            Article.objects.bulk_create(
                articles,
                update_conflicts=True,
                unique_fields=["project", "external_id"],
                update_fields=[*ARTICLE_FIELDS, "updated_at"],
            )
        article_ids = {a.external_id: a.pk for a in articles[: len(new_rows)]}
        if any(pk is None for pk in article_ids.values()):  # backends that return no ids on upsert
            article_ids = dict(
                Article.objects.filter(project=project, external_id__in=list(article_ids)).values_list(
                    "external_id", "id"
                )
            )
        tasks = self._tasks(new_rows, article_ids)
        if tasks:
            Task.objects.bulk_create(tasks, ignore_conflicts=True)
        labelled = [r for r in rows if r.has_labels]
        if labelled:
            for row in labelled:
                if row.external_id not in article_ids:
                    article_ids[row.external_id] = existing[row.external_id][0]
            self._labels(labelled, article_ids, new={r.external_id for r in new_rows})
        return {
            "rows_created": len(new_rows),
            "rows_updated": len(changed),
            "rows_unchanged": unchanged,
            "tasks_created": len(tasks),
        }

    def _tasks(self, rows: list[ArticleRow], article_ids: dict[str, int]) -> list[Task]:
        project = self.project
        overlap = project.overlap
        split = self.options.split == "paragraph"
        tasks = []
        for row in rows:
            base = {
                "project": project,
                "article_id": article_ids[row.external_id],
                "payload": row.payload,
                "required_skill": row.skill,
                "priority": row.priority,
            }
            if split:
                for index, (start, end) in enumerate(paragraphs(row.text)):
                    tasks.append(Task(segment_index=index, start_offset=start, end_offset=end, **base))
            else:
                # Imported annotations count as submitted ones (one per distinct annotator).
                submitted = len(self._annotators(row))
                tasks.append(
                    Task(
                        is_gold=row.gold is not None,
                        gold_answer=row.gold,
                        submitted_count=submitted,
                        is_complete=submitted >= overlap if submitted else False,
                        **base,
                    )
                )
        return tasks

    def _annotators(self, row: ArticleRow) -> dict[int, dict]:
        """The first annotation of each user: completed_by matched to a member's email, else the importer."""
        out: dict[int, dict] = {}
        for email, result in row.annotations:
            user_id = self.member_emails.get(email.lower()) if email else None
            user_id = user_id or self.user_id
            if user_id is not None and user_id not in out:
                out[user_id] = result
        return out

    def _labels(self, rows: list[ArticleRow], article_ids: dict[str, int], *, new: set[str]) -> None:
        project = self.project
        task_ids = dict(
            Task.objects.filter(article_id__in=[article_ids[r.external_id] for r in rows], segment_index=0).values_list(
                "article_id", "id"
            )
        )
        predictions, annotations, assignments = [], [], []
        now = timezone.now()
        for row in rows:
            task_id = task_ids.get(article_ids[row.external_id])
            if task_id is None:
                continue
            seen_versions = set()
            for version, result, score in row.predictions:
                if version in seen_versions:
                    continue
                seen_versions.add(version)
                predictions.append(
                    Prediction(project=project, task_id=task_id, model_version=version, result=result, score=score)
                )
            if row.external_id not in new:
                continue  # re-imports leave annotations alone
            for user_id, result in self._annotators(row).items():
                annotations.append(
                    Annotation(
                        project=project,
                        task_id=task_id,
                        user_id=user_id,
                        result=result,
                        status=AnnotationStatus.SUBMITTED,
                        submitted_at=now,
                    )
                )
                assignments.append(
                    Assignment(project=project, task_id=task_id, user_id=user_id, status=AssignmentStatus.SUBMITTED)
                )
        if predictions:
            Prediction.objects.bulk_create(
                predictions,
                update_conflicts=True,
                unique_fields=["task", "model_version"],
                update_fields=["result", "score", "updated_at"],
            )
        if annotations:
            Annotation.objects.bulk_create(annotations, ignore_conflicts=True)
            Assignment.objects.bulk_create(assignments, ignore_conflicts=True)
