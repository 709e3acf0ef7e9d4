"""In-file duplicate ids are found in bounded memory (``SeenIds``): however far apart the two rows
are, across batches, after a resume from the checkpoint and in both passes of ``all_or_nothing``,
the later row is an error with its line, in file order, and the rows around it are imported.

The import tests shrink ``SeenIds`` to a filter of 8 bits and an in-memory window of 2 ids, so
nearly every id is looked up in its SQLite database rather than found in memory."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from projects.assignment.models import Task
from projects.documents.models import Article
from projects.imports import services
from projects.imports.models import ImportJob, ImportStatus
from projects.imports.options import ImportOptions
from projects.imports.seen import SeenIds

ROWS = 40
BAD_LINE = 12
# later line -> earlier line holding the same id: far apart, adjacent, and twice the same id
DUPLICATES = {38: 1, 20: 19, 25: 5, 33: 5, 9: 2}
TINY = {"filter_bits": 8, "flush_every": 2}


def _ident(line: int) -> str:
    return f"a{DUPLICATES.get(line, line)}"


def _content(rows: int = ROWS) -> str:
    lines = []
    for line in range(1, rows + 1):
        if line == BAD_LINE:
            lines.append("{not json")
        else:
            lines.append(json.dumps({"id": _ident(line), "title": f"Line {line}", "text": f"Text of line {line}."}))
    return "\n".join(lines) + "\n"


def _duplicate(line: int) -> dict:
    return {"line": line, "message": f"duplicate id '{_ident(line)}': an earlier row of this file has it"}


EXPECTED_LINES = sorted([BAD_LINE, *DUPLICATES])
GOOD = ROWS - 1 - len(DUPLICATES)


@pytest.fixture
def tiny_window(monkeypatch):
    monkeypatch.setattr(services, "SeenIds", lambda: SeenIds(**TINY))


def _job(project, manager, content: str, **options):
    path = services.new_upload_path("news.jsonl")
    path.write_text(content)
    return services.import_create(project=project, actor=manager, path=path, file_name="news.jsonl", options=options)


def _assert_first_rows_won(project) -> None:
    articles = dict(Article.objects.filter(project=project).values_list("external_id", "title"))
    assert len(articles) == GOOD
    for later, earlier in DUPLICATES.items():
        assert articles[f"a{earlier}"] == f"Line {earlier}", later


# --- SeenIds on its own ---------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, TINY, {"filter_bits": 64, "flush_every": 7, "cache_kib": 16}])
def test_seen_ids_answers_as_a_set_would(options):
    rng = random.Random(7)
    ids = [f"id-{rng.randrange(3000)}" for _ in range(5000)] + ["", "é", "x" * 255]
    expected, got = set(), []
    with SeenIds(**options) as seen:
        for ident in ids:
            got.append(seen.add(ident))
            assert len(seen._pending) < seen._flush_every  # the in-memory window never grows past its size
    for ident, new in zip(ids, got, strict=True):
        assert new == (ident not in expected)
        expected.add(ident)


def test_ids_sharing_a_filter_slot_are_told_apart():
    with SeenIds(filter_bits=8, flush_every=1) as seen:
        assert all(seen.add(f"n{i}") for i in range(100))  # 100 ids in 8 slots: every slot shared
        assert not any(seen.add(f"n{i}") for i in range(100))


def test_filter_size_must_be_a_power_of_two():
    with pytest.raises(ValueError):
        SeenIds(filter_bits=1000)


# --- imports ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_duplicates_far_apart_across_batches_are_reported_in_order(tiny_window, project, manager):
    job = services.import_run(job=_job(project, manager, _content(), batch_size=3))
    assert job.status == ImportStatus.SUCCEEDED, job.message
    assert (job.rows_read, job.rows_created, job.rows_failed, job.tasks_created) == (ROWS, GOOD, 6, GOOD)
    assert [e["line"] for e in job.errors] == EXPECTED_LINES
    assert [e for e in job.errors if e["line"] != BAD_LINE] == [_duplicate(line) for line in sorted(DUPLICATES)]
    _assert_first_rows_won(project)
    assert Task.objects.filter(project=project).count() == GOOD


@pytest.mark.django_db
def test_errors_are_handed_over_in_batches_of_at_most_batch_size(project, manager):
    content = '{"text": 1}\n' * 7 + '{"id": "ok", "text": "fine"}\n' + '{"text": 1}\n' * 5
    job = _job(project, manager, content, batch_size=3)
    path = str(Path(settings.MEDIA_ROOT) / job.file_path)
    options = ImportOptions.parse(job.options)
    packages = list(services._parse_batches(job, path, options, project.label_schema, resume_at=0))
    assert all(len(p.errors) <= 3 and len(p.rows) <= 3 for p in packages)
    assert [line for p in packages for line, _, _ in p.errors] == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13]
    assert [r.external_id for p in packages for r in p.rows] == ["ok"]
    assert sum(p.read for p in packages) == 13 and packages[-1].last
    job = services.import_run(job=job)
    assert (job.status, job.rows_read, job.rows_created, job.rows_failed) == ("succeeded", 13, 1, 12)
    assert [e["line"] for e in job.errors] == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13]


class Killed(BaseException):
    """The worker dies inside a batch's transaction (not an error the import catches)."""


@pytest.mark.django_db
def test_duplicates_of_rows_before_the_checkpoint_are_found_after_a_resume(tiny_window, project, manager, monkeypatch):
    batches = []

    def die_in_the_fourth_batch(name: str) -> None:
        batches.append(name)
        if len(batches) == 4:
            raise Killed

    monkeypatch.setattr(services, "fault_point", die_in_the_fourth_batch)
    job = _job(project, manager, _content(), batch_size=3)
    with pytest.raises(Killed):
        services.import_run(job=job)
    job.refresh_from_db()
    # Three batches committed (lines 1-10; line 9 repeats line 2), the fourth died unwritten.
    assert (job.status, job.rows_read, job.rows_created) == (ImportStatus.RUNNING, 10, 9)
    assert job.errors == [_duplicate(9)]
    assert Article.objects.filter(project=project).count() == 9

    monkeypatch.setattr(services, "fault_point", lambda name: None)
    # The dead run's heartbeat goes stale; another worker takes the job over from its checkpoint.
    stale = timezone.now() - timedelta(seconds=settings.JOB_STALL_SECONDS + 1)
    ImportJob.objects.filter(pk=job.pk).update(updated_at=stale)
    job = services.import_run(job=job)
    assert job.status == ImportStatus.SUCCEEDED, job.message
    assert (job.rows_read, job.rows_created, job.rows_failed, job.tasks_created) == (ROWS, GOOD, 6, GOOD)
    assert [e["line"] for e in job.errors] == EXPECTED_LINES  # 25, 33, 38 repeat ids written before it
    _assert_first_rows_won(project)


@pytest.mark.django_db
def test_all_or_nothing_fails_on_a_far_duplicate_and_stores_nothing(tiny_window, project, manager):
    content = _content().replace("{not json", json.dumps({"id": "fine", "text": "Fine."}))
    job = services.import_run(job=_job(project, manager, content, batch_size=3, all_or_nothing=True))
    assert job.status == ImportStatus.FAILED and "all_or_nothing" in job.message
    assert job.errors == [_duplicate(line) for line in sorted(DUPLICATES)]
    assert not Article.objects.filter(project=project).exists()


@pytest.mark.django_db
def test_all_or_nothing_with_distinct_ids_imports_every_row(tiny_window, project, manager):
    content = "".join(json.dumps({"id": f"u{i}", "text": f"Text {i}."}) + "\n" for i in range(25))
    job = services.import_run(job=_job(project, manager, content, batch_size=4, all_or_nothing=True))
    assert (job.status, job.rows_created, job.rows_failed) == (ImportStatus.SUCCEEDED, 25, 0)
    assert Article.objects.filter(project=project).count() == 25
