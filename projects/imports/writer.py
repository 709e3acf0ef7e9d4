"""Writes one batch of mapped rows: articles (upsert by external id), tasks for new articles,
predictions (upsert by task and model version) and annotations for new tasks.

Two writers with the same results (counts, ids, what a re-import changes):

``CopyWriter`` (PostgreSQL, rows without labels): the batch goes to the server with ``COPY`` in its
binary format into a temporary staging table (psycopg 3 ``cursor.copy``: one stream, no per-row
statement, no SQL literal building, no escaping), then ONE statement moves it: ``INSERT INTO
article ... SELECT FROM stage ON CONFLICT (project_id, external_id) DO UPDATE ... WHERE <a stored
field differs>`` returning which rows were inserted (``xmax = 0``) or updated, chained in the same
statement to the ``INSERT`` of tasks for the inserted ones (paragraph splits are ``unnest``-ed from
offset arrays). Unchanged rows are neither written nor counted as updated; updated ones keep their
tasks and annotations and get their full-text document reset (``search_document = NULL``; see
``projects.assignment.search``). Why: Django's ``bulk_create`` spends most of its time preparing
and binding values per field and the server re-parses a huge INSERT; COPY streams the values as
they are, and the upsert and task insert run set-wise inside the server.

``BatchWriter`` (SQLite, and rows that carry predictions or annotations): the ORM. One SELECT of
the batch's ids, one INSERT ... ON CONFLICT for new and changed articles, one INSERT of tasks,
and, only when the batch carries labels, a few more for predictions, annotations and assignments.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import orjson
from django.db import connection
from django.utils import timezone

from projects.annotations.models import Annotation, AnnotationStatus
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.assignment.search import reset_documents
from projects.core.models import Project
from projects.documents.models import Article
from projects.imports.mapping import ArticleRow, paragraphs
from projects.imports.options import ImportOptions
from projects.prelabel.models import Prediction

ARTICLE_FIELDS = ("title", "text", "source", "url", "published_at", "domain", "meta")
COUNT_KEYS = ("rows_created", "rows_updated", "rows_unchanged", "tasks_created")


def _nothing() -> None:
    pass


class BatchWriter:
    def __init__(self, *, project: Project, options: ImportOptions, user_id: int | None, member_emails: dict) -> None:
        self.project = project
        self.options = options
        self.user_id = user_id
        self.member_emails = member_emails

    def write(self, rows: list[ArticleRow], *, copied: Callable[[], None] = _nothing) -> dict[str, int]:
        copied()  # no COPY step: the next batch may be parsed from the start
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
            reset_documents(project.pk, [r.external_id for r in changed])
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


# The staging table's columns and their types. The batch is sent in COPY's binary format: values
# travel as they are, with no escaping in Python nor unescaping and parsing of numbers and dates
# in the server (the worker's CPU for the COPY is about a third of the text format's). The JSON
# columns are staged as text (already serialized by orjson) and cast to jsonb by the upsert.
# Integers must fit their column: psycopg's binary int4 wraps a larger value silently (mapping
# refuses such a priority; ord and offsets are bounded by the batch and text sizes).
STAGE = "import_stage"
STAGE_TYPES = (
    ("ord", "integer"),
    ("external_id", "text"),
    ("title", "text"),
    ("text", "text"),
    ("source", "text"),
    ("url", "text"),
    ("published_at", "timestamptz"),
    ("domain", "text"),
    ("meta", "text"),
    ("payload", "text"),
    ("skill", "text"),
    ("priority", "integer"),
    ("gold", "text"),
    ("starts", "integer[]"),
    ("ends", "integer[]"),
)
STAGE_DDL = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} ({", ".join(f"{name} {kind}" for name, kind in STAGE_TYPES)})
ON COMMIT DELETE ROWS
"""
STAGE_COLUMNS = ", ".join(name for name, _kind in STAGE_TYPES)
COPY_TYPES = [{"integer": "int4", "integer[]": "int4[]"}.get(kind, kind) for _name, kind in STAGE_TYPES]


def _dumps(value) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits (from a JSON array); json writes it as it is
        return json.dumps(value, ensure_ascii=False)


def _task_defaults() -> tuple[list[str], list]:
    """Columns of Task the import does not set, with their model defaults (so new fields need no change here)."""
    given = {
        "id", "project_id", "article_id", "segment_index", "start_offset", "end_offset", "payload", "required_skill",
        "priority", "is_gold", "gold_answer", "created_at", "updated_at",
    }  # fmt: skip
    columns, values = [], []
    for f in Task._meta.concrete_fields:
        if f.column in given:
            continue
        columns.append(f.column)
        values.append(f.get_db_prep_save(f.get_default(), connection))
    return columns, values


class CopyWriter:
    """PostgreSQL: COPY into a staging table, then one upsert + task insert statement per batch."""

    def __init__(self, *, project: Project, options: ImportOptions, user_id: int | None, member_emails: dict) -> None:
        self.project = project
        self.split = options.split == "paragraph"
        self.orm = BatchWriter(project=project, options=options, user_id=user_id, member_emails=member_emails)
        self._statement = self._build_statement()
        self._lz4: bool | None = None
        self.seconds = {"copy": 0.0, "upsert": 0.0}  # wall time of the two steps, for the log and benchmarks

    def _build_statement(self) -> str:
        article, task = Article._meta.db_table, Task._meta.db_table
        fields = ", ".join(ARTICLE_FIELDS)
        staged = ", ".join(f"{f}::jsonb" if f == "meta" else f for f in ARTICLE_FIELDS)
        updates = ", ".join(f"{f} = EXCLUDED.{f}" for f in ARTICLE_FIELDS)
        differs = f"({', '.join(f'{article}.{f}' for f in ARTICLE_FIELDS)}) IS DISTINCT FROM "
        differs += f"({', '.join(f'EXCLUDED.{f}' for f in ARTICLE_FIELDS)})"
        extra_columns, self._defaults = _task_defaults()
        extra = "".join(f", {c}" for c in extra_columns)
        extra_values = "".join(f", %(d{i})s" for i in range(len(extra_columns)))
        if self.split:
            segments = "CROSS JOIN LATERAL unnest(s.starts, s.ends) WITH ORDINALITY AS p(start_offset, end_offset, n)"
            task_values = "p.n - 1, p.start_offset, p.end_offset, false, NULL"
            order = "s.ord, p.n"
        else:
            segments = ""
            task_values = "0, NULL, NULL, s.gold IS NOT NULL, s.gold::jsonb"
            order = "s.ord"
        return f"""
WITH written AS (
    INSERT INTO {article} (project_id, external_id, {fields}, search_document, created_at, updated_at)
    SELECT %(project)s, external_id, {staged}, NULL, %(now)s, %(now)s FROM {STAGE} ORDER BY ord
    ON CONFLICT (project_id, external_id) DO UPDATE
        SET {updates}, search_document = NULL, updated_at = EXCLUDED.updated_at
        WHERE {differs}
    RETURNING id, external_id, xmax = 0 AS inserted
), tasks AS (
    INSERT INTO {task} (project_id, article_id, segment_index, start_offset, end_offset, is_gold, gold_answer,
                        payload, required_skill, priority, created_at, updated_at{extra})
    SELECT %(project)s, w.id, {task_values}, s.payload::jsonb, s.skill, s.priority, %(now)s, %(now)s{extra_values}
    FROM written w JOIN {STAGE} s ON s.external_id = w.external_id {segments}
    WHERE w.inserted
    ORDER BY {order}
    ON CONFLICT (article_id, segment_index) DO NOTHING
    RETURNING 1
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), (SELECT count(*) FROM tasks)
FROM written
"""

    def write(self, rows: list[ArticleRow], *, copied: Callable[[], None] = _nothing) -> dict[str, int]:
        """``copied()`` is called once the rows are sent and the database is left to do the rest."""
        labelled = [r for r in rows if r.has_labels]
        result = self.orm.write(labelled) if labelled else dict.fromkeys(COUNT_KEYS, 0)
        plain = [r for r in rows if not r.has_labels] if labelled else rows
        if plain:
            for key, value in self._copy(plain, copied).items():
                result[key] += value
        else:
            copied()
        return result

    def _session(self, cursor) -> None:
        # For this transaction only: lz4 compresses the (TOASTed) article text about 5x faster than
        # the default pglz, and the batch's commit does not wait for its WAL flush (a server crash
        # may lose the last batches of a running import; the job is then re-run, and upserts make
        # that harmless).
        if self._lz4 is None:
            cursor.execute("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
            found = cursor.fetchone()
            self._lz4 = bool(found and found[0] and "lz4" in found[0])
        if self._lz4:
            cursor.execute("SET LOCAL default_toast_compression = 'lz4'")
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(STAGE_DDL)

    def _copy(self, rows: list[ArticleRow], copied: Callable[[], None]) -> dict[str, int]:
        dumps = _dumps
        split = self.split
        started = time.perf_counter()
        with connection.cursor() as cursor:
            self._session(cursor)
            cursor.execute(f"TRUNCATE {STAGE}")  # several batches may share one transaction (all_or_nothing)
            with cursor.cursor.copy(f"COPY {STAGE} ({STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(COPY_TYPES)
                write_row = copy.write_row
                for ord_, r in enumerate(rows):
                    if split:
                        bounds = paragraphs(r.text)
                        starts, ends = [b[0] for b in bounds], [b[1] for b in bounds]
                    else:
                        starts = ends = None
                    write_row(
                        (
                            ord_,
                            r.external_id,
                            r.title,
                            r.text,
                            r.source,
                            r.url,
                            r.published_at,
                            r.domain,
                            dumps(r.meta),
                            dumps(r.payload),
                            r.skill,
                            r.priority,
                            dumps(r.gold) if r.gold is not None else None,
                            starts,
                            ends,
                        )
                    )
            sent = time.perf_counter()
            copied()
            params = {"project": self.project.pk, "now": timezone.now()}
            params.update((f"d{i}", value) for i, value in enumerate(self._defaults))
            cursor.execute(self._statement, params)
            created, updated, tasks = cursor.fetchone()
        self.seconds["copy"] += sent - started
        self.seconds["upsert"] += time.perf_counter() - sent
        return {
            "rows_created": created,
            "rows_updated": updated,
            "rows_unchanged": len(rows) - created - updated,
            "tasks_created": tasks,
        }
