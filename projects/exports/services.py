"""Export services: the streamed download, snapshot jobs and the diff between two snapshots."""

from __future__ import annotations

import hashlib
import tempfile
import zlib
from collections.abc import Iterable, Iterator

import orjson
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from projects.core import events, stalls
from projects.core.exceptions import Conflict, NotFound, ValidationFailed
from projects.core.faults import fault_point
from projects.core.models import Project
from projects.core.services import audit_log
from projects.exports import jobs
from projects.exports.filters import ExportOptions
from projects.exports.formats import FORMATS, FormatContext
from projects.exports.formats.common import dumpline, dumps
from projects.exports.formats.native import dataset_card
from projects.exports.models import ACTIVE_EXPORT_STATUSES, ExportJob, ExportStatus
from projects.exports.selectors import export_records

STREAM_PIECE = 64 * 1024


def _buffered(pieces: Iterable[bytes], size: int = STREAM_PIECE) -> Iterator[bytes]:
    """Join small writer pieces into ~64 KiB blocks: fewer socket writes, same bytes."""
    parts: list[bytes] = []
    held = 0
    for piece in pieces:
        parts.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(parts)
            parts, held = [], 0
    if parts:
        yield b"".join(parts)


def gzipped(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """A gzip stream (no file name, mtime 0, so the same input gives the same bytes)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    for block in blocks:
        out = compressor.compress(block)
        if out:
            yield out
    yield compressor.flush()


def export_stream(
    *, project: Project, options: ExportOptions, after: int = 0, gzip: bool = False, ctx: FormatContext | None = None
) -> Iterator[bytes]:
    """The export file as a stream of byte blocks, reading the database chunk by chunk."""
    ctx = ctx or FormatContext(schema=project.label_schema or {}, options=options)
    writer = FORMATS[options.format].writer
    blocks = _buffered(writer(export_records(project=project, options=options, after=after), ctx))
    return gzipped(blocks) if gzip else blocks


def export_download_start(
    *, project: Project, actor, options: ExportOptions, after: int | None = None, gzip: bool = False
) -> Iterator[bytes]:
    """``export_stream`` for a person: records who took which data, then streams it."""
    audit_log(
        actor=actor,
        action="export.stream",
        project=project,
        data={**options.as_dict(), "after": after, "gzip": gzip},
    )
    return export_stream(project=project, options=options, after=after, gzip=gzip)


def export_snapshot_open(*, job: ExportJob, actor, card: bool = False):
    """Open a finished snapshot's file (or its dataset card) for download, recording who took it."""
    if job.status != ExportStatus.DONE:
        raise NotFound(f"Export {job.pk} is {job.status}; there is no file yet.")
    path = job.card_file if card else job.file
    if not path:
        raise NotFound("This export has no dataset card (only hf snapshots do).")
    audit_log(
        actor=actor,
        action="export.download",
        project=job.project,
        target=job,
        data={"file": "card" if card else "data", "format": job.format, "sha256": job.sha256},
    )
    return default_storage.open(path, "rb")


def safe_filename(project: Project, options: ExportOptions, *, gzip: bool = False) -> str:
    """``project-<id>-<format>-<mode>.<ext>``: ASCII only, nothing a header or a path could misread."""
    ext = FORMATS[options.format].extension
    name = f"project-{project.pk}-{options.format}-{options.mode}.{ext}"
    return name + (".gz" if gzip else "")


# --- snapshots ------------------------------------------------------------------------------


def export_snapshot_start(
    *, project: Project, actor, options: ExportOptions, idempotency_key: str = ""
) -> tuple[ExportJob, bool]:
    """Create a snapshot job and enqueue its build; return (job, created).

    The same ``Idempotency-Key`` returns the job it created first; the same parameters while a
    job with them is queued or running return that job (a partial unique constraint guards the race).
    """
    key = (idempotency_key or "").strip()[:200]
    params_hash = options.params_hash()
    if key:
        existing = ExportJob.objects.filter(project=project, idempotency_key=key).first()
        if existing is not None:
            if existing.params_hash != params_hash:
                raise Conflict("This Idempotency-Key was already used for a different export.")
            return existing, False
    running = ExportJob.objects.filter(project=project, params_hash=params_hash, status__in=ACTIVE_EXPORT_STATUSES)
    if (job := running.first()) is not None:
        return job, False
    try:
        with transaction.atomic():
            job = ExportJob.objects.create(
                project=project,
                created_by=actor if actor is not None and actor.is_authenticated else None,
                format=options.format,
                mode=options.mode,
                filters=options.filters_dict(),
                params_hash=params_hash,
                idempotency_key=key,
            )
            audit_log(actor=actor, action="export.start", project=project, target=job, data=options.as_dict())
    except IntegrityError:
        job = (
            ExportJob.objects.filter(project=project)
            .filter(Q(idempotency_key=key) if key else Q(params_hash=params_hash, status__in=ACTIVE_EXPORT_STATUSES))
            .first()
        )
        if job is None:
            raise
        return job, False

    jobs.export_enqueue(job)
    return job, True


def options_of(job: ExportJob) -> ExportOptions:
    filters = dict(job.filters)
    filters["annotators"] = tuple(filters.get("annotators") or ())
    return ExportOptions(format=job.format, mode=job.mode, **filters)


class _Superseded(Exception):
    """A newer attempt claimed the job while this one was building."""


def _claim(job_id: int) -> int | None:
    """Queued → running, as attempt n+1; None when the job is finished or a live run has it.

    A running job whose heartbeat is older than ``JOB_STALL_SECONDS`` is taken over too: its
    worker died (SIGKILL, OOM) and the message was redelivered. A message that arrives while the
    build is alive does nothing. Should a taken-over run still be alive, only the newest attempt
    may mark the job done (``export_build`` checks ``attempts``): the older one stops at its next
    heartbeat and throws its files away.
    """
    claimable = Q(status=ExportStatus.QUEUED) | Q(status=ExportStatus.RUNNING, updated_at__lt=stalls.stalled_before())
    attempts = ExportJob.objects.filter(claimable, pk=job_id).values_list("attempts", flat=True).first()
    if attempts is None:
        return None
    now = timezone.now()
    claimed = ExportJob.objects.filter(claimable, pk=job_id, attempts=attempts).update(
        status=ExportStatus.RUNNING, started_at=now, updated_at=now, attempts=attempts + 1, error=""
    )
    return attempts + 1 if claimed else None


def _save(path: str, fh) -> str:
    if default_storage.exists(path):
        default_storage.delete(path)
    return default_storage.save(path, File(fh))


def export_build(*, job_id: int) -> ExportJob | None:
    """Write the snapshot file, its manifest (task id → label hash) and, for ``hf``, a dataset card.

    The job turns ``done`` only once every file is complete, in one conditional update; a file
    from an interrupted attempt is never referenced (each attempt after the first writes to a
    folder of its own). While it writes, the build refreshes the job's ``updated_at`` (its
    heartbeat) every ``stalls.pulse_seconds()``, and stops once a newer attempt has the job.
    """
    attempt = _claim(job_id)
    if attempt is None:
        return None
    job = ExportJob.objects.select_related("project").get(pk=job_id)
    mine = ExportJob.objects.filter(pk=job_id, status=ExportStatus.RUNNING, attempts=attempt)
    project = job.project
    options = options_of(job)
    ctx = FormatContext(schema=project.label_schema or {}, options=options)
    folder = f"exports/project-{project.pk}/{job.pk}" + (f"/{attempt}" if attempt > 1 else "")
    ext = FORMATS[options.format].extension
    written: list[str] = []
    pulse = stalls.Pulse()
    try:
        digest = hashlib.sha256()
        size = 0
        with tempfile.TemporaryFile() as data, tempfile.TemporaryFile() as manifest:
            records = _manifested(export_records(project=project, options=options), manifest, ctx)
            for block in _buffered(FORMATS[options.format].writer(records, ctx)):
                digest.update(block)
                size += len(block)
                data.write(block)
                fault_point("export.write")
                if pulse.due() and not mine.update(updated_at=timezone.now()):
                    raise _Superseded
            data.seek(0)
            manifest.seek(0)
            job.file = _save(f"{folder}/data.{ext}", data)
            written.append(job.file)
            job.manifest_file = _save(f"{folder}/manifest.jsonl", manifest)
            written.append(job.manifest_file)
        job.sha256, job.size_bytes = digest.hexdigest(), size
        job.row_count, job.task_count, job.annotation_count = ctx.rows, ctx.tasks, ctx.annotations
        job.schema_version, job.guidelines_version = project.schema_version, project.guidelines_version
        job.label_schema = project.label_schema
        if options.format == "hf":
            with tempfile.TemporaryFile() as card:
                card.write(dataset_card(project=project, job=job, ctx=ctx).encode())
                card.seek(0)
                job.card_file = _save(f"{folder}/README.md", card)
                written.append(job.card_file)
        job.status, job.error = ExportStatus.DONE, ""
        job.finished_at = job.updated_at = timezone.now()
        with transaction.atomic():
            done = mine.update(**{field: getattr(job, field) for field in DONE_FIELDS})
            if done:
                events.emit(
                    "export.ready",
                    project_id=project.pk,
                    data={"export_id": job.pk, "format": job.format, "rows": job.row_count, "sha256": job.sha256},
                )
    except _Superseded:
        done = 0
    except Exception as exc:
        now = timezone.now()
        error = f"{type(exc).__name__}: {exc}"[:2000]
        mine.update(status=ExportStatus.FAILED, error=error, finished_at=now, updated_at=now)
        raise
    if not done:  # a newer attempt took the job over: its files are the ones kept
        for path in written:
            default_storage.delete(path)
        return None
    job.attempts = attempt
    return job


DONE_FIELDS = (
    "file",
    "manifest_file",
    "card_file",
    "sha256",
    "size_bytes",
    "row_count",
    "task_count",
    "annotation_count",
    "schema_version",
    "guidelines_version",
    "label_schema",
    "status",
    "finished_at",
    "updated_at",
    "error",
)


def _label_hash(label) -> str:
    return hashlib.sha256(dumps(label)).hexdigest()[:32]


def _manifested(records: Iterable[dict], manifest, ctx: FormatContext) -> Iterator[dict]:
    """Pass records through, writing ``[task_id, label hash]`` per task (raw mode: over its rows)."""
    current: int | None = None
    hashes: list[str] = []

    def flush() -> None:
        if current is not None:
            manifest.write(dumpline([current, hashes[0] if len(hashes) == 1 else _label_hash(hashes)]))

    for record in records:
        if record["task_id"] != current:
            flush()
            current, hashes = record["task_id"], []
            ctx.tasks += 1
        hashes.append(_label_hash(record.get("label")))
        ctx.annotations += 1 if "annotation" in record else len(record["annotations"])
        yield record
    flush()


def _manifest(job: ExportJob) -> dict[int, str]:
    if job.status != ExportStatus.DONE or not job.manifest_file:
        raise ValidationFailed(f"Export {job.pk} is not finished.", code="not_ready")
    out: dict[int, str] = {}
    with default_storage.open(job.manifest_file, "rb") as fh:
        for line in fh:
            task_id, digest = orjson.loads(line)
            out[task_id] = digest
    return out


def export_diff(*, a: ExportJob, b: ExportJob) -> dict:
    """Tasks added in ``b``, removed from ``a``, and relabeled (label hash changed), by task id."""
    if a.project_id != b.project_id:
        raise ValidationFailed("Both snapshots must belong to the same project.")
    left, right = _manifest(a), _manifest(b)
    added = sorted(set(right) - set(left))
    removed = sorted(set(left) - set(right))
    relabeled = sorted(t for t in set(left) & set(right) if left[t] != right[t])
    return {
        "from": a.pk,
        "to": b.pk,
        "added": added,
        "removed": removed,
        "relabeled": relabeled,
        "unchanged": len(set(left) & set(right)) - len(relabeled),
        "schema_changed": a.schema_version != b.schema_version,
        "guidelines_changed": a.guidelines_version != b.guidelines_version,
    }
