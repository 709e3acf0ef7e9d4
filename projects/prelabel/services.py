"""Writes for pre-labeling: labeler configs, runs (start, plan, chunks, cancel) and predictions.

A run is planned into chunks of task ids (``PrelabelChunk`` rows); each chunk is one Celery
message. A chunk stores its predictions and flips from pending to done in one transaction, with
a conditional update, so a redelivered or duplicated message stores nothing twice and counts
each task once. Predictions are upserted on (task, model version).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Min, OuterRef, Subquery
from django.utils import timezone

from projects.assignment.models import Task
from projects.core import dispatch, events, stalls
from projects.core.exceptions import Conflict, ValidationFailed
from projects.core.models import Project
from projects.core.schema import ResultError, validate_result
from projects.core.services import audit_log
from projects.prelabel import jobs, selectors
from projects.prelabel.labelers import (
    LabelerConfigError,
    LabelerContext,
    LabelerError,
    LabelerOutput,
    LabelerUnavailable,
    TaskInput,
    build_labeler,
    labeler_class,
)
from projects.prelabel.labelers.base import BaseLabeler
from projects.prelabel.models import (
    ACTIVE_STATUSES,
    ChunkStatus,
    Labeler,
    LabelerKind,
    Prediction,
    PrelabelChunk,
    PrelabelRun,
    RunStatus,
    TrainedModel,
)

logger = logging.getLogger(__name__)

MAX_ERRORS_PER_CHUNK = 50
NAME_RE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
REMOTE_KINDS = (LabelerKind.LS_BACKEND, LabelerKind.OPENAI)


def prelabel_enqueue(job, *args, on_deferred=None) -> None:
    """Send a pre-label job to ``PRELABEL_QUEUE`` after the commit (the outbox if Redis is down)."""
    dispatch.enqueue(job, *args, queue=getattr(settings, "PRELABEL_QUEUE", "") or None, on_deferred=on_deferred)


# --- labeler configurations (admins) --------------------------------------------------------


@transaction.atomic
def labeler_save(
    *,
    project: Project,
    actor,
    name: str,
    kind: str,
    config: dict,
    is_active: bool = True,
    labeler: Labeler | None = None,
) -> Labeler:
    """Create or update a project's labeler after validating its config for the schema."""
    if not NAME_RE.match(name or ""):
        raise ValidationFailed("A labeler name is 1-64 letters, digits, - or _.", fields={"name": "invalid"})
    normalized = labeler_class(kind).validate_config(config, project.label_schema)
    if labeler is None:
        if Labeler.objects.filter(project=project, name=name).exists():
            raise Conflict(f"A labeler named {name!r} already exists.", fields={"name": "taken"})
        labeler = Labeler(project=project, created_by=actor)
    labeler.name, labeler.kind, labeler.config, labeler.is_active = name, kind, normalized, is_active
    labeler.save()
    audit_log(actor=actor, action="labeler.saved", project=project, target=labeler, data={"name": name, "kind": kind})
    return labeler


# --- runs -----------------------------------------------------------------------------------


def _resolve_labeler(*, project: Project, labeler: str, config: dict | None) -> tuple[Labeler | None, str, str, dict]:
    """(row, kind, name, normalized config) for a configured labeler name or a built-in kind."""
    row = Labeler.objects.filter(project=project, name=labeler).first()
    if row is not None:
        if not row.is_active:
            raise ValidationFailed(f"The labeler {labeler!r} is switched off.", fields={"labeler": "inactive"})
        if config:
            raise ValidationFailed(
                "A configured labeler runs with its saved config; leave config empty.", fields={"config": "not allowed"}
            )
        return row, row.kind, row.name, labeler_class(row.kind).validate_config(row.config, project.label_schema)
    if labeler in REMOTE_KINDS:
        raise ValidationFailed(
            "Remote labelers run only once an admin has configured them (POST .../labelers/).",
            fields={"labeler": "not configured"},
        )
    if labeler not in (LabelerKind.RULES, LabelerKind.SKLEARN):
        raise ValidationFailed(
            f"No labeler {labeler!r} in this project; use a configured name, 'rules' or 'sklearn'.",
            fields={"labeler": "unknown"},
        )
    return None, labeler, labeler, labeler_class(labeler).validate_config(config or {}, project.label_schema)


def _model_version(*, project: Project, kind: str, name: str, config: dict) -> str:
    if kind == LabelerKind.SKLEARN:
        models = TrainedModel.objects.filter(project=project)
        model = models.filter(version=config["version"]).first() if config.get("version") else models.first()
        if model is None:
            raise ValidationFailed(
                "No trained model for this project yet: train one first (POST .../prelabel-models/).",
                fields={"labeler": "no model"},
                code="no_model",
            )
        return model.model_version
    return labeler_class(kind).default_model_version(name=name, config=config, project_id=project.pk)


def _fingerprint(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def prelabel_run_start(
    *,
    project: Project,
    actor,
    labeler: str,
    config: dict | None = None,
    task_filter: Any = "all",
    idempotency_key: str = "",
    chunk_size: int | None = None,
) -> tuple[PrelabelRun, bool]:
    """Queue a run, or return the same active run (or the run of the same Idempotency-Key).

    Returns (run, created). Planning and predicting happen in Celery jobs after the commit.
    """
    task_filter = selectors.normalize_task_filter(task_filter)
    row, kind, name, normalized = _resolve_labeler(project=project, labeler=labeler, config=config)
    model_version = _model_version(project=project, kind=kind, name=name, config=normalized)
    fingerprint = _fingerprint(kind=kind, name=name, config=normalized, version=model_version, filter=task_filter)
    chunk_size = chunk_size or settings.PRELABEL_CHUNK_SIZE
    try:
        with transaction.atomic():
            Project.objects.select_for_update().filter(pk=project.pk).first()
            if idempotency_key:
                earlier = PrelabelRun.objects.filter(project=project, idempotency_key=idempotency_key).first()
                if earlier is not None:
                    if earlier.fingerprint != fingerprint:
                        raise Conflict(
                            "This Idempotency-Key was used for a different pre-label request.",
                            code="idempotency_key_reused",
                        )
                    return earlier, False
            active = PrelabelRun.objects.filter(
                project=project, fingerprint=fingerprint, status__in=ACTIVE_STATUSES
            ).first()
            if active is not None:
                return active, False
            run = PrelabelRun.objects.create(
                project=project,
                labeler=row,
                labeler_kind=kind,
                labeler_name=name,
                config=normalized,
                model_version=model_version,
                task_filter=task_filter,
                chunk_size=chunk_size,
                fingerprint=fingerprint,
                idempotency_key=idempotency_key,
                created_by=actor,
            )
            audit_log(
                actor=actor,
                action="prelabel.started",
                project=project,
                target=run,
                data={"labeler": name, "model_version": model_version, "filter": task_filter},
            )

            def waiting(run=run) -> None:  # Redis unreachable: the run waits, and says so
                PrelabelRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
                    message=dispatch.QUEUE_WAITING_MESSAGE
                )
                run.message = dispatch.QUEUE_WAITING_MESSAGE

            prelabel_enqueue(jobs.prelabel_run_plan_job, run.pk, on_deferred=waiting)
            return run, True
    except IntegrityError:
        # Two requests with the same Idempotency-Key raced; the other one won.
        earlier = PrelabelRun.objects.filter(project=project, idempotency_key=idempotency_key).first()
        if earlier is None:
            raise
        return earlier, False


@transaction.atomic
def prelabel_run_cancel(*, run: PrelabelRun, actor) -> PrelabelRun:
    """Stop a queued or running run: chunks not yet started are skipped."""
    updated = PrelabelRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(
        status=RunStatus.CANCELLED, cancel_requested=True, finished_at=timezone.now(), updated_at=timezone.now()
    )
    if not updated:
        raise Conflict(f"The run is {run.status}; only queued or running runs can be cancelled.", code="not_active")
    audit_log(actor=actor, action="prelabel.cancelled", project=run.project, target=run)
    run.refresh_from_db()
    return run


def _context(run: PrelabelRun) -> LabelerContext:
    return LabelerContext(project_id=run.project_id, schema=run.project.label_schema, model_version=run.model_version)


def prelabel_run_plan(*, run_id: int) -> None:
    """Split the run into chunks (once) and enqueue every chunk that is not done yet."""
    run = PrelabelRun.objects.select_related("project").filter(pk=run_id).first()
    if run is None or run.status not in ACTIVE_STATUSES:
        return
    try:
        labeler = build_labeler(run.labeler_kind, config=run.config, context=_context(run))
    except (LabelerUnavailable, LabelerConfigError) as exc:
        PrelabelRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(
            status=RunStatus.FAILED, message=str(exc)[:2000], finished_at=timezone.now()
        )
        return
    if not run.chunks.exists():
        ids = list(selectors.task_ids_for_filter(project=run.project, task_filter=run.task_filter))
        with transaction.atomic():
            locked = PrelabelRun.objects.select_for_update().get(pk=run.pk)
            if locked.status in ACTIVE_STATUSES and not locked.chunks.exists():
                PrelabelChunk.objects.bulk_create(
                    PrelabelChunk(run=locked, index=i, task_ids=ids[start : start + run.chunk_size])
                    for i, start in enumerate(range(0, len(ids), run.chunk_size))
                )
                now = timezone.now()
                locked.total, locked.started_at = len(ids), now
                locked.status = RunStatus.RUNNING if ids else RunStatus.FINISHED
                locked.finished_at = None if ids else now
                if locked.message == dispatch.QUEUE_WAITING_MESSAGE:
                    locked.message = ""
                locked.save(update_fields=["total", "started_at", "status", "finished_at", "message", "updated_at"])
    if labeler.remote:
        try:
            labeler.setup()
        except LabelerUnavailable as exc:
            # Many backends do without /setup; /predict says whether the endpoint really works.
            PrelabelRun.objects.filter(pk=run.pk).update(message=f"setup: {exc}"[:2000])
    with transaction.atomic():
        for chunk_id in run.chunks.filter(status=ChunkStatus.PENDING).values_list("id", flat=True):
            prelabel_enqueue(jobs.prelabel_chunk_job, chunk_id)


LABELER_CACHE_SIZE = 8
_labelers: OrderedDict[tuple, BaseLabeler] = OrderedDict()
_labelers_lock = threading.Lock()


def _run_labeler(run: PrelabelRun) -> BaseLabeler:
    """The run's labeler, built once per worker process and reused for the run's other chunks.

    The key holds the run, its fingerprint (labeler, config, model version, filter), the schema and
    the labeler's own token (a trained model's file and checksum), so a changed schema or model, or
    a reused run id, builds a new one. Labelers whose token is ``None`` are built per chunk.
    """
    context = _context(run)
    cls = labeler_class(run.labeler_kind)
    token = cls.cache_token(context)
    if token is None:
        return build_labeler(run.labeler_kind, config=run.config, context=context)
    schema_digest = hashlib.sha256(orjson.dumps(context.schema, option=orjson.OPT_SORT_KEYS)).hexdigest()
    key = (run.pk, run.project_id, run.fingerprint, schema_digest, token)
    with _labelers_lock:
        labeler = _labelers.get(key)
        if labeler is not None:
            _labelers.move_to_end(key)
            return labeler
    labeler = build_labeler(run.labeler_kind, config=run.config, context=context)
    with _labelers_lock:
        _labelers[key] = labeler
        while len(_labelers) > LABELER_CACHE_SIZE:
            _labelers.popitem(last=False)
    return labeler


def _inputs(run: PrelabelRun, task_ids: list[int]) -> list[TaskInput]:
    rows = (
        Task.objects.filter(project_id=run.project_id, pk__in=task_ids)
        .order_by("id")
        .values_list("id", "payload", "start_offset", "end_offset", "article__text")
    )
    return [
        TaskInput(pk, text if start is None else text[start:end], payload or {})
        for pk, payload, start, end, text in rows
    ]


def _validated(run: PrelabelRun, inputs: list[TaskInput], answers: list) -> list[LabelerOutput | LabelerError]:
    by_id = {t.id: t for t in inputs}
    if sorted(a.task_id for a in answers) != sorted(by_id):
        raise LabelerUnavailable("the labeler answered for other tasks than it was given")
    schema = run.project.label_schema
    out: list[LabelerOutput | LabelerError] = []
    for answer in answers:
        if isinstance(answer, LabelerError):
            out.append(answer)
            continue
        task = by_id[answer.task_id]
        try:
            answer.result = validate_result(schema, answer.result, text=task.text, payload=task.payload, draft=True)
        except ResultError as exc:
            detail = "; ".join(f"{k} {v}" for k, v in exc.fields.items()) or exc.message
            out.append(LabelerError(task.id, f"prediction does not fit the schema: {detail}"))
            continue
        out.append(answer)
    return out


def _upsert_postgres(*, project_id: int, model_version: str, outputs: list[LabelerOutput]) -> None:
    """The same upsert as ``bulk_create(update_conflicts=True)``, as one statement with one parameter.

    The chunk's rows travel as one JSON array (serialized by orjson) that PostgreSQL unpacks with
    ``jsonb_to_recordset``. A VALUES list with a placeholder per cell costs the client more than
    the insert (psycopg parses the query and adapts each value), and Django's UNNEST bulk insert
    spends it on encoding arrays of JSON (measured in bench/scenarios/prelabel.py).
    """
    table = Prediction._meta.db_table
    now = timezone.now()
    rows = orjson.dumps(
        [{"task_id": o.task_id, "result": o.result, "score": o.score, "margin": o.margin} for o in outputs],
        option=orjson.OPT_SERIALIZE_NUMPY,
    ).decode()
    sql = (
        f"INSERT INTO {table} (project_id, task_id, model_version, result, score, margin, created_at, updated_at) "
        "SELECT %s, r.task_id, %s, r.result, r.score, r.margin, %s, %s "
        "FROM jsonb_to_recordset(%s::jsonb) AS r(task_id bigint, result jsonb, score double precision, "
        "margin double precision) "
        "ON CONFLICT (task_id, model_version) DO UPDATE SET result = EXCLUDED.result, "
        "score = EXCLUDED.score, margin = EXCLUDED.margin, updated_at = EXCLUDED.updated_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [project_id, model_version, now, now, rows])


@transaction.atomic(savepoint=False)
def predictions_store(*, project_id: int, model_version: str, outputs: list[LabelerOutput]) -> None:
    """Upsert predictions on (task, model version) and refresh the tasks' uncertainty."""
    if not outputs:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Two statements per chunk, each a few milliseconds of work; with stale statistics the
            # planner can rate them above jit_above_cost and spend half a second compiling them.
            cursor.execute("SET LOCAL jit = off")
        _upsert_postgres(project_id=project_id, model_version=model_version, outputs=outputs)
    else:
        Prediction.objects.bulk_create(
            [
                Prediction(
                    project_id=project_id,
                    task_id=o.task_id,
                    model_version=model_version,
                    result=o.result,
                    score=o.score,
                    margin=o.margin,
                )
                for o in outputs
            ],
            update_conflicts=True,
            unique_fields=["task", "model_version"],
            update_fields=["result", "score", "margin", "updated_at"],
        )
    task_ids = [o.task_id for o in outputs]
    if connection.vendor == "postgresql":
        # Rows whose uncertainty is unchanged (a re-run, a labeler without margins) are not rewritten.
        with connection.cursor() as cursor:
            lowest_sql = (
                f"(SELECT MIN(p.margin) FROM {Prediction._meta.db_table} p "
                "WHERE p.task_id = t.id AND p.margin IS NOT NULL)"
            )
            cursor.execute(
                f"UPDATE {Task._meta.db_table} AS t SET uncertainty = {lowest_sql} "
                f"WHERE t.id = ANY(%s) AND t.uncertainty IS DISTINCT FROM {lowest_sql}",
                [task_ids],
            )
        return
    lowest = (
        Prediction.objects.filter(task=OuterRef("pk"), margin__isnull=False)
        .order_by()
        .values("task")
        .annotate(m=Min("margin"))
        .values("m")[:1]
    )
    Task.objects.filter(pk__in=task_ids).update(uncertainty=Subquery(lowest))


def prelabel_chunk_process(*, chunk_id: int) -> str:
    """Predict one chunk and store it. Safe to run twice: the second run stores nothing."""
    chunk = PrelabelChunk.objects.select_related("run__project").filter(pk=chunk_id).first()
    if chunk is None or chunk.status != ChunkStatus.PENDING:
        return "already done"
    run = chunk.run
    if run.status not in ACTIVE_STATUSES or run.cancel_requested:
        PrelabelChunk.objects.filter(pk=chunk.pk, status=ChunkStatus.PENDING).update(status=ChunkStatus.SKIPPED)
        return "skipped"
    PrelabelChunk.objects.filter(pk=chunk.pk).update(attempts=F("attempts") + 1)
    if run.updated_at < timezone.now() - timedelta(seconds=stalls.pulse_seconds()):
        # The run's heartbeat, when no chunk refreshed it lately (its chunks waited in the queue).
        PrelabelRun.objects.filter(pk=run.pk).update(updated_at=timezone.now())
    inputs = _inputs(run, chunk.task_ids)
    gone = sorted(set(chunk.task_ids) - {t.id for t in inputs})
    try:
        labeler = _run_labeler(run)
        with _heartbeat(run.pk):
            predicted = labeler.predict(inputs) if inputs else []
        answers = _validated(run, inputs, predicted) if inputs else []
        bad = [a for a in answers if isinstance(a, LabelerError)]
        if labeler.remote and bad:
            # A remote batch is all-or-nothing: one malformed prediction means none is trusted.
            raise LabelerUnavailable(f"malformed prediction for task {bad[0].task_id}: {bad[0].message}")
    except LabelerUnavailable as exc:
        answers = [LabelerError(t.id, str(exc)) for t in inputs]
    except Exception as exc:  # a labeler bug fails this chunk's tasks, not the whole run
        logger.exception("labeler %s failed on chunk %s", run.labeler_kind, chunk.pk)
        answers = [LabelerError(t.id, f"labeler error: {exc.__class__.__name__}: {exc}") for t in inputs]
    answers += [LabelerError(task_id, "the task no longer exists") for task_id in gone]
    outputs = [a for a in answers if isinstance(a, LabelerOutput)]
    errors = [{"task_id": a.task_id, "message": a.message[:500]} for a in answers if isinstance(a, LabelerError)]
    if not chunk_results_store(chunk=chunk, outputs=outputs, errors=errors):
        return "already done"
    return f"{len(outputs)} stored, {len(errors)} failed"


@transaction.atomic
def chunk_results_store(*, chunk: PrelabelChunk, outputs: list[LabelerOutput], errors: list[dict]) -> bool:
    """Flip a pending chunk to done with its predictions and counts, and finish the run when it
    was the last one; False (nothing written) when the chunk was already done."""
    run = chunk.run
    now = timezone.now()
    claimed = PrelabelChunk.objects.filter(pk=chunk.pk, status=ChunkStatus.PENDING).update(
        status=ChunkStatus.DONE,
        done=len(outputs),
        failed=len(errors),
        errors=errors[:MAX_ERRORS_PER_CHUNK],
        finished_at=now,
    )
    if not claimed:
        return False
    predictions_store(project_id=run.project_id, model_version=run.model_version, outputs=outputs)
    PrelabelRun.objects.filter(pk=run.pk).update(
        done=F("done") + len(outputs), failed=F("failed") + len(errors), updated_at=now
    )
    finished = PrelabelRun.objects.filter(
        pk=run.pk, status=RunStatus.RUNNING, total__lte=F("done") + F("failed")
    ).update(status=RunStatus.FINISHED, finished_at=now)
    if finished:
        run.refresh_from_db(fields=["done", "failed", "total"])
        events.emit(
            "prelabel.finished",
            project_id=run.project_id,
            data={"run_id": run.pk, "model_version": run.model_version, "done": run.done, "failed": run.failed},
        )
    return True


@contextmanager
def _heartbeat(run_id: int) -> Iterator[None]:
    """While a chunk predicts (a remote model can take minutes), a second thread refreshes the
    run's ``updated_at`` every ``stalls.pulse_seconds()``, so the stalled-run sweep sees it alive."""
    done = threading.Event()

    def beat() -> None:
        try:
            while not done.wait(stalls.pulse_seconds()):
                try:
                    PrelabelRun.objects.filter(pk=run_id).update(updated_at=timezone.now())
                except DatabaseError as exc:  # the chunk itself will meet it too; keep beating
                    logger.warning("run %s: heartbeat not written: %s", run_id, exc)
        finally:
            connection.close()  # this thread's own connection, if it opened one

    thread = threading.Thread(target=beat, name=f"prelabel-{run_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
