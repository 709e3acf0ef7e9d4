"""Import services: store an upload as a job, and run the job (parse, validate, upsert in batches).

``import_create`` checks the whole file first (encoding, binary data, archives, the CSV header), so
a bad file is refused before anything is written. ``import_run`` streams the rows, validates each
one, and writes batches of articles and tasks, each batch in its own transaction (the whole file
in one when ``all_or_nothing``). Re-importing updates changed articles, leaves unchanged ones and
every task, annotation and review alone, and creates tasks only for new articles.

On PostgreSQL the batches are written by ``writer.CopyWriter`` (COPY + one upsert statement); each
batch commits together with the job's progress, so the job row is a resume checkpoint. When the job
ends it queues ``search.index_articles``, which computes the full-text documents of the written
articles off the import's critical path (``projects.assignment.search``).

``import_for_key`` finds the job an ``Idempotency-Key`` already created (see ``api``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from projects.core import events, stalls
from projects.core.exceptions import Conflict, ValidationFailed
from projects.core.faults import fault_point
from projects.core.models import Membership, Project
from projects.core.services import audit_log
from projects.imports import parsers, reader
from projects.imports.errors import ImportFileError, RowError
from projects.imports.mapping import map_row
from projects.imports.models import (
    IDEMPOTENCY_HOURS,
    MAX_STORED_ERRORS,
    ImportFormat,
    ImportJob,
    ImportStatus,
)
from projects.imports.options import ImportOptions
from projects.imports.seen import SeenIds
from projects.imports.writer import BatchWriter, CopyWriter

logger = logging.getLogger(__name__)
UPLOAD_DIR = "imports"
SUPERSEDED = "superseded"  # another run of the same job saved progress first: this one stops


def upload_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / UPLOAD_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_upload_path(name: str) -> Path:
    """A fresh file path under MEDIA_ROOT/imports/ for an upload called ``name``."""
    suffix = "".join(PurePosixPath(name).suffixes[-2:])[:20] if name else ""
    return upload_dir() / f"{uuid.uuid4().hex}{suffix}"


def _limits() -> reader.Limits:
    return reader.Limits(
        max_uncompressed_bytes=settings.IMPORT_MAX_UNCOMPRESSED_BYTES,
        max_ratio=settings.IMPORT_MAX_COMPRESSION_RATIO,
    )


def _discard(path: Path | str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def discard_upload(path: Path | str) -> None:
    """Delete a stored upload (no error if it is gone)."""
    _discard(path)


def import_for_key(*, project: Project, actor, key: str) -> ImportJob | None:
    """The job an earlier request with this Idempotency-Key created, if within ``IDEMPOTENCY_HOURS``.

    An older job keeps its data but gives up the key, so the key can start a new import.
    """
    job = ImportJob.objects.filter(project=project, created_by=actor, idempotency_key=key).first()
    if job is not None and job.created_at < timezone.now() - timezone.timedelta(hours=IDEMPOTENCY_HOURS):
        ImportJob.objects.filter(pk=job.pk).update(idempotency_key="")
        return None
    return job


def import_create(
    *,
    project: Project,
    actor,
    path: Path,
    file_name: str,
    fmt: str | None = None,
    options: dict | None = None,
    idempotency_key: str = "",
    fingerprint: str = "",
) -> ImportJob:
    """Check a stored upload and create its queued import job (``jobs.import_enqueue`` runs it).

    Raises ``ImportFileError`` (and deletes the file) when the file as a whole cannot be imported;
    nothing is written then. With ``idempotency_key``, a concurrent request that created a job with
    the same key first makes this raise ``IntegrityError`` (the caller answers with that job).
    """
    try:
        if fmt and fmt not in ImportFormat.values:
            raise ValidationFailed(
                f"Unknown format {fmt!r}.", fields={"format": f"must be one of {', '.join(ImportFormat.values)}"}
            )
        parsed = ImportOptions.parse(options)
        size = path.stat().st_size
        info = reader.inspect_file(str(path), name=file_name, size=size, fmt=fmt or None, limits=_limits())
        if info.format in ("json", "labelstudio"):
            parsers.check_json_array(info.head)
        elif info.format in ("csv", "tsv"):
            delimiter = "\t" if info.format == "tsv" else ","
            parsers.check_csv_header(info.head, delimiter=delimiter, text_field=parsed.text_field)
    except Exception:
        _discard(path)
        raise
    with transaction.atomic():
        job = ImportJob.objects.create(
            project=project,
            created_by=actor,
            format=info.format,
            compression=info.compression,
            options=parsed.as_dict(),
            file_name=file_name[:255],
            file_path=str(path.relative_to(settings.MEDIA_ROOT)),
            file_size=size,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
        )
        audit_log(
            actor=actor,
            action="import.create",
            project=project,
            target=job,
            data={"format": job.format, "file": job.file_name},
        )
    return job


@transaction.atomic
def import_cancel(*, job: ImportJob, actor) -> ImportJob:
    """Stop a queued or running import; batches already written stay."""
    updated = ImportJob.objects.filter(pk=job.pk, status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]).update(
        status=ImportStatus.CANCELLED, finished_at=timezone.now(), updated_at=timezone.now()
    )
    if not updated:
        raise Conflict(f"Import {job.pk} has already finished ({job.status}).")
    audit_log(actor=actor, action="import.cancel", project=job.project, target=job)
    job.refresh_from_db()
    return job


class _Progress:
    """Counters and the capped error list, written to the job row after every batch.

    The row is also the run's checkpoint: ``rows_read`` is saved in the same transaction as the
    batch, so a run that takes over a job whose worker died resumes after the last committed
    batch with the counts that batch left (``resume=True``). Every save is conditional on this
    run's attempt number (and on the ``rows_read`` it saw last): once a newer run has claimed the
    job (the stalled-job sweep resumed it while this one was in fact alive), this run's next save
    fails, its batch rolls back and it stops. Each save is also the run's heartbeat.
    """

    def __init__(self, job: ImportJob, *, resume: bool, attempt: int) -> None:
        self.job = job
        self.attempt = attempt
        self.counts = dict.fromkeys(
            ("rows_read", "rows_created", "rows_updated", "rows_unchanged", "rows_failed", "tasks_created"), 0
        )
        self.errors: list[dict] = []
        self.truncated = 0
        self.saved_rows_read = job.rows_read
        if resume:
            self.counts = {key: getattr(job, key) for key in self.counts}
            self.errors = list(job.errors or [])
            self.truncated = job.errors_truncated
        self.errors_dirty = False

    def error(self, line: int, source: str, message: str) -> None:
        self.counts["rows_failed"] += 1
        if len(self.errors) < MAX_STORED_ERRORS:
            entry = {"line": line, "message": message}
            if source:
                entry["file"] = source
            self.errors.append(entry)
            self.errors_dirty = True
        else:
            self.truncated += 1

    def save(self, **extra) -> bool:
        """Write progress; False when the job was cancelled or another run saved first."""
        values = dict(self.counts, updated_at=timezone.now(), errors_truncated=self.truncated, **extra)
        if self.errors_dirty:
            values["errors"] = self.errors
            self.errors_dirty = False
        saved = self._mine().filter(rows_read=self.saved_rows_read).update(**values)
        if saved:
            self.saved_rows_read = self.counts["rows_read"]
        return bool(saved)

    def beat(self) -> bool:
        """Refresh the heartbeat while waiting (a slow parse, a resume replaying rows); False once
        this run is no longer the job's current one."""
        return bool(self._mine().update(updated_at=timezone.now()))

    def _mine(self):
        return ImportJob.objects.filter(pk=self.job.pk, status=ImportStatus.RUNNING, attempts=self.attempt)

    def stopped_status(self) -> str:
        """Why a save failed: the job was cancelled, or another run of it took over."""
        status = ImportJob.objects.filter(pk=self.job.pk).values_list("status", flat=True).first()
        return ImportStatus.CANCELLED if status == ImportStatus.CANCELLED else SUPERSEDED


def _rows(job: ImportJob, path: str, options: ImportOptions) -> Iterator[tuple[str, int, str, dict | None, str | None]]:
    """(source file name, line, format, data, error) for every row of the stored file."""
    if job.format == "zip":
        info = reader.FileInfo(format="zip", members=reader.zip_members(path))
        for member, fmt, stream in reader.iter_zip_members(path, info):
            try:
                yield from ((member, line, fmt, data, err) for line, data, err in _parse(fmt, stream, member, options))
            except ImportFileError as exc:
                yield member, 0, fmt, None, exc.message
        return
    info = reader.FileInfo(format=job.format, compression=job.compression)
    with reader.open_source(path, info) as stream:
        for line, data, err in _parse(job.format, stream, "", options):
            yield "", line, job.format, data, err


def _parse(fmt: str, stream, member: str, options: ImportOptions) -> Iterator[parsers.RowTuple]:
    if fmt in ("jsonl", "doccano"):
        return parsers.iter_jsonl(stream)
    if fmt in ("json", "labelstudio"):
        return parsers.iter_json_array(stream)
    if fmt in ("csv", "tsv"):
        return parsers.iter_csv(stream, delimiter="\t" if fmt == "tsv" else ",", text_field=options.text_field)
    text = parsers.read_text(stream, max_chars=10_000_000)
    data = {"text": text}
    if member:
        data["id"] = member  # one article per file: a zip member's path is its id
    return iter([(1, data, None)])


def _title_for(source: str, fmt: str, job: ImportJob) -> str:
    if fmt != "txt":
        return ""
    return PurePosixPath(source or job.file_name).stem


def _claim(job: ImportJob) -> int | None:
    """Queued → running as attempt n+1; None when the job is finished or a live run has it.

    A running job whose heartbeat is older than ``JOB_STALL_SECONDS`` is taken over too (its
    worker died and the broker redelivered the message); a message that arrives while the run is
    alive (a redelivery, a duplicate) does nothing. The checkpoint in ``_Progress`` makes a
    takeover safe.
    """
    claimable = Q(status=ImportStatus.QUEUED) | Q(status=ImportStatus.RUNNING, updated_at__lt=stalls.stalled_before())
    attempts = ImportJob.objects.filter(claimable, pk=job.pk).values_list("attempts", flat=True).first()
    if attempts is None:
        return None
    now = timezone.now()
    claimed = ImportJob.objects.filter(claimable, pk=job.pk, attempts=attempts).update(
        status=ImportStatus.RUNNING, started_at=now, updated_at=now, message="", attempts=attempts + 1
    )
    return attempts + 1 if claimed else None


def import_run(*, job: ImportJob) -> ImportJob:
    """Run a queued import. Idempotent: a finished job is left as it is, and rows are upserted.

    A job whose worker was killed is resumed after its last committed batch, with its counts.
    """
    attempt = _claim(job)
    if attempt is None:
        job.refresh_from_db()
        return job
    job.refresh_from_db()
    options = ImportOptions.parse(job.options)
    path = str(Path(settings.MEDIA_ROOT) / job.file_path)
    # all_or_nothing writes in one transaction, so a killed run left nothing: start again.
    progress = _Progress(job, resume=job.rows_read > 0 and not options.all_or_nothing, attempt=attempt)
    status, message = ImportStatus.SUCCEEDED, ""
    try:
        if options.all_or_nothing:
            status, message = _run_all_or_nothing(job, path, options, progress)
        else:
            status, message = _run(job, path, options, progress, write=True)
    except ImportFileError as exc:
        status, message = ImportStatus.FAILED, exc.message
    except Exception:
        logger.exception("import %s failed", job.pk)
        status, message = ImportStatus.FAILED, "The import stopped on an unexpected error; see the server log."
    if status == SUPERSEDED:  # the run that took over finishes the job and deletes the file
        job.refresh_from_db()
        return job
    _discard(path)
    if status != ImportStatus.CANCELLED:
        if not message and progress.counts["rows_failed"]:
            message = f"{progress.counts['rows_failed']} row(s) could not be imported; see the errors."
        progress.save(status=status, message=message, finished_at=timezone.now())
    job.refresh_from_db()
    if settings.IS_POSTGRES and (job.rows_created or job.rows_updated):
        _schedule_search_index(job.project_id)
    events.emit(
        "import.finished",
        project_id=job.project_id,
        data={"import_id": job.pk, "status": job.status, "rows_created": job.rows_created},
    )
    return job


def _schedule_search_index(project_id: int) -> None:
    """Full-text documents of the written articles are computed after the import, not during it
    (searches compute them on the fly meanwhile; see ``projects.assignment.search``)."""
    from projects.assignment.jobs import search_index_job

    transaction.on_commit(lambda: search_index_job.delay(project_id))


def _run_all_or_nothing(job: ImportJob, path: str, options: ImportOptions, progress: _Progress):
    # First pass validates every row without writing; the second writes them all in one transaction.
    status, message = _run(job, path, options, progress, write=False)
    if status != ImportStatus.SUCCEEDED:
        return status, message
    if progress.counts["rows_failed"]:
        return ImportStatus.FAILED, (
            f"{progress.counts['rows_failed']} row(s) have errors; nothing was imported (all_or_nothing)."
        )
    progress.counts = dict.fromkeys(progress.counts, 0)
    with transaction.atomic():
        status, message = _run(job, path, options, progress, write=True, atomic=False)
        if status != ImportStatus.SUCCEEDED:  # cancelled meanwhile: keep nothing
            transaction.set_rollback(True)
            progress.counts = dict.fromkeys(progress.counts, 0)
        return status, message


def _run(job: ImportJob, path: str, options: ImportOptions, progress: _Progress, *, write: bool, atomic=True):
    project = job.project
    schema = project.label_schema
    writer_class = CopyWriter if connection.vendor == "postgresql" else BatchWriter
    writer = writer_class(
        project=project, options=options, user_id=job.created_by_id, member_emails=_member_emails(project)
    )
    batch: list = []
    counts = progress.counts
    started, write_seconds = time.perf_counter(), 0.0
    packages = _parsed_batches(job, path, options, schema, resume_at=counts["rows_read"], on_wait=progress.beat)

    def write_and_save() -> bool:
        nonlocal write_seconds
        if write:
            began = time.perf_counter()
            result = writer.write(batch, copied=packages.proceed)
            write_seconds += time.perf_counter() - began
            for key, value in result.items():
                counts[key] += value
            fault_point("import.batch")
        if progress.save():
            return True
        transaction.set_rollback(True)  # cancelled or taken over: this batch is not ours to keep
        return False

    def flush() -> bool:
        # The batch and its progress commit together: the saved rows_read is a true checkpoint.
        if write and atomic:
            with transaction.atomic():
                saved = write_and_save()
        else:
            saved = progress.save() if not write else write_and_save()
        batch.clear()
        return saved

    ended = False
    with closing(packages):
        for package in packages:
            counts["rows_read"] += package.read
            for line, source, message in package.errors:
                progress.error(line, source, message)
            batch[:] = package.rows
            if (not package.last or batch or counts["rows_read"]) and not flush():
                return progress.stopped_status(), ""
            ended = package.last
    if not ended:  # a heartbeat found the job cancelled or taken over while waiting for rows
        return progress.stopped_status(), ""
    if write:
        total = time.perf_counter() - started
        detail = "".join(f", {k} {v:.2f}s" for k, v in getattr(writer, "seconds", {}).items())
        logger.info(
            "import %s: %d rows in %.2fs: read+parse+map %.2fs, db write %.2fs%s",
            job.pk, counts["rows_read"], total, total - write_seconds, write_seconds, detail,
        )  # fmt: skip
    if counts["rows_read"] == 0:
        return ImportStatus.FAILED, "The file holds no rows."
    return ImportStatus.SUCCEEDED, ""


@dataclass
class _Parsed:
    """A batch of mapped rows, with the rows read and the row errors met since the last one."""

    rows: list = field(default_factory=list)
    read: int = 0
    errors: list = field(default_factory=list)  # (line, source file, message)
    last: bool = False


class _ParseThread:
    """``_Parsed`` batches of ``options.batch_size`` rows, parsed on a second thread, in file order.

    The thread parses and maps batch *n+1* while the caller writes batch *n*, and starts on it when
    the caller calls ``proceed()`` (the COPY writer does once the batch's rows are sent and the
    database runs the upsert, the long wait of a batch) or asks for the next batch. Why not at
    once: sending the COPY is the caller's own Python work, and it gives the GIL up each time it
    waits on the connection; a parsing thread running then kept the GIL for up to a switch interval
    (5 ms) each time, so the COPY, and the database behind it, waited for the parsing.

    The caller applies each batch's counts when it commits the batch, so the job's saved progress
    never counts a row that is not written (the resume checkpoint). At most one batch waits parsed,
    so two batches are in memory. A file error is raised in the caller's thread, after the batches
    before it (as without the thread).

    While the caller waits longer than ``stalls.pulse_seconds()`` for a batch (a resumed run
    replays the rows before its checkpoint without yielding), ``on_wait()`` refreshes the job's
    heartbeat; when it returns False the batches end early, without the last one.
    """

    def __init__(
        self,
        job: ImportJob,
        path: str,
        options: ImportOptions,
        schema,
        *,
        resume_at: int,
        on_wait: Callable[[], bool] | None = None,
    ) -> None:
        self._on_wait = on_wait
        self._wait = stalls.pulse_seconds() if on_wait is not None else None
        self._handoff: queue.Queue = queue.Queue(maxsize=1)
        self._permits = threading.Semaphore(0)
        self._granted = False
        self._done = False
        self._stop = threading.Event()
        args = (job, path, options, schema, resume_at)
        self._thread = threading.Thread(target=self._produce, args=args, name=f"import-{job.pk}-parse", daemon=True)
        self._thread.start()

    def _produce(self, job, path, options, schema, resume_at) -> None:
        try:
            # Closed here, in this thread, also when the caller stops early (its SeenIds with it).
            with closing(_parse_batches(job, path, options, schema, resume_at=resume_at)) as packages:
                while self._acquire():
                    package = next(packages)
                    if not self._put(package) or package.last:
                        return
        except BaseException as exc:  # handed to the caller's thread
            self._put(exc)

    # Both wait in steps, so that a caller who stopped (``close``) never leaves this thread blocked.
    def _acquire(self) -> bool:
        while not self._stop.is_set():
            if self._permits.acquire(timeout=0.1):
                return True
        return False

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def proceed(self) -> None:
        """The caller no longer needs the GIL much for the batch it holds: parse the next one."""
        if not self._granted:
            self._granted = True
            self._permits.release()

    def __iter__(self) -> _ParseThread:
        return self

    def __next__(self) -> _Parsed:
        if self._done:
            raise StopIteration
        self.proceed()
        while True:
            try:
                item = self._handoff.get(timeout=self._wait)
                break
            except queue.Empty:
                if not self._on_wait():  # cancelled or taken over: hand nothing more over
                    self.close()
                    raise StopIteration from None
        self._granted = False
        if isinstance(item, BaseException):
            self.close()
            raise item
        if item.last:
            self.close()
        return item

    def close(self) -> None:
        self._done = True
        self._stop.set()
        self._thread.join()


_parsed_batches = _ParseThread  # the name callers and tests use


def _parse_batches(job: ImportJob, path: str, options: ImportOptions, schema, *, resume_at: int):
    """``_Parsed`` batches of the rows after ``resume_at``; every value kept across batches is bounded.

    A batch is handed over when it holds ``batch_size`` rows, or ``batch_size`` row errors (a file
    of bad rows does not pile its errors up in one batch). In-file duplicate ids are found with
    ``SeenIds``, whose memory does not grow with the file.
    """
    package = _Parsed()
    # Rows up to the checkpoint were written by an earlier run of this job; replay them only to
    # know their ids (a later duplicate is still reported), without writing or counting.
    index = 0
    with SeenIds() as seen:
        for source, line, fmt, data, error in _rows(job, path, options):
            index += 1
            if index <= resume_at:
                if error is None:
                    try:
                        title = _title_for(source, fmt, job)
                        row = map_row(data, fmt=fmt, options=options, schema=schema, default_title=title)
                        seen.add(row.external_id)
                    except RowError:
                        pass
                continue
            package.read += 1
            if error is not None:
                package.errors.append((line, source, error))
            else:
                try:
                    title = _title_for(source, fmt, job)
                    row = map_row(data, fmt=fmt, options=options, schema=schema, default_title=title)
                except RowError as exc:
                    package.errors.append((line, source, exc.message))
                else:
                    if seen.add(row.external_id):
                        package.rows.append(row)
                    else:
                        message = f"duplicate id {row.external_id[:80]!r}: an earlier row of this file has it"
                        package.errors.append((line, source, message))
            if len(package.rows) >= options.batch_size or len(package.errors) >= options.batch_size:
                yield package
                package = _Parsed()
    package.last = True
    yield package


def _member_emails(project: Project) -> dict[str, int]:
    return {
        email.lower(): user_id
        for email, user_id in Membership.objects.filter(project=project).values_list("user__email", "user_id")
        if email
    }
