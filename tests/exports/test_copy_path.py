"""The two ways records are read give the same bytes: PostgreSQL's binary COPY (the default there)
and chunked ORM queries (any database); and the csv writer's own quoting equals ``csv.writer``'s."""

from __future__ import annotations

import csv
import io
import math
import random
from datetime import UTC, datetime

import pytest
from django.db import connection

from projects.annotations.models import Annotation, AnnotationStatus, ReviewState
from projects.exports import selectors
from projects.exports.filters import parse_options
from projects.exports.formats import FORMAT_NAMES, FORMATS, FormatContext
from projects.exports.formats.tabular import csv_line
from tests import factories
from tests.exports.conftest import SCHEMA

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's; SQLite reads through the ORM only"
)

# Texts that JSON, COPY and CSV each escape in their own way.
TRICKY_TEXTS = [
    'She said "no", then left.\nNew line,\r\nCRLF and a tab\there.',
    'Back\\slash \\n not a newline, \\\\ two, and a quote \\" mixed',
    "Control \x01\x02\x1f and DEL \x7f, emoji 🧪, combining é, line sep \u2028 para \u2029.",
    "",
    "   leading and trailing spaces   ",
    "日本語のテキスト、カンマ、「引用」",
]


def _render(project, fmt: str, params: dict, source: str, chunk_size: int | None = None, after: int = 0) -> bytes:
    options = parse_options({"format": fmt, **params}, formats=FORMAT_NAMES)
    ctx = FormatContext(schema=project.label_schema or {}, options=options)
    records = selectors.export_records(
        project=project, options=options, after=after, chunk_size=chunk_size, source=source
    )
    return b"".join(FORMATS[fmt].writer(records, ctx))


@pytest.fixture
def tricky(db):
    """A project without any review (so consolidated exports take the single-COPY path), with
    texts, titles and values that every encoder handles differently."""
    project = factories.ProjectFactory(label_schema=SCHEMA, name="Tricky")
    users = [factories.UserFactory(username=name) for name in ("ann,a", 'bo"b', "zoë")]
    floats = [8.0, 0.1, 37.283736251920004, 1e-07, 12345678.9, float("nan")]
    for i, text in enumerate(TRICKY_TEXTS):
        segment = {"start_offset": 3, "end_offset": 12} if i == 1 else {}
        task = factories.TaskFactory(
            article__project=project,
            article__external_id=f'ext,"{i}"',
            article__title=text[:20],
            article__url=f"https://example.com/{i}?a=1&b=2",
            article__published_at=datetime(2026, 1, 2, 3, 4, 5, 123400 if i % 2 else 0, tzinfo=UTC),
            article__text=text,
            payload={"z": 1, "a": {"y": [1.0, 2.5, None], "b": text}, "n": 1e-7},
            agreement=[None, 0.3333333333333333, 1.0][i % 3],
            is_gold=i == 2,
            required_skill="news" if i % 2 else "",
            **segment,
        )
        annotators = users[: 1 + i % 3]
        # Odd tasks: annotation ids in the reverse order of user ids, so an unordered read by the
        # (task, user) index would show.
        for j, user in enumerate(annotators[::-1] if i % 2 else annotators):
            ann = factories.AnnotationFactory(
                task=task,
                user=user,
                lead_time=floats[(i + j) % len(floats)],
                guideline_version=None if j else 2,
                result={
                    "topic": ["politics", "business"][j % 2],
                    "entities": [{"start": 0, "end": 3, "label": "ORG", "text": text[:3]}] if text else [],
                    "answer": text,
                    "quality": {"relevance": 1 + j, "coherence": 4.5},
                    "better": {"choice": "ab"[j % 2], "reason": text[:5]},
                },
            )
            Annotation.objects.filter(pk=ann.pk).update(
                submitted_at=datetime(2026, 3, 1 + i, 9, 30, j, 120000 * j, tzinfo=UTC)
            )
    factories.AnnotationFactory(task=factories.TaskFactory(article__project=project), status=AnnotationStatus.DRAFT)
    return project


CASES = [
    *[(fmt, {}) for fmt in FORMAT_NAMES],
    ("jsonl", {"mode": "raw"}),
    ("csv", {"mode": "raw"}),
    ("label-studio", {"mode": "raw"}),
    ("jsonl", {"gold": "exclude"}),
    ("jsonl", {"gold": "only"}),
    ("jsonl", {"skill": "news"}),
    ("jsonl", {"min_agreement": "0.3"}),
    ("jsonl", {"annotator": "bob"}),
    ("jsonl", {"status": "reviewed"}),
    ("jsonl", {"status": "accepted", "mode": "raw"}),
    ("jsonl", {"since": "2026-03-02", "until": "2026-03-04"}),
    ("jsonl", {"consensus": "dawid_skene"}),
    ("preference", {"ties": "include"}),
]


@postgres_only
@pytest.mark.parametrize("chunk_size", [None, 1, 2])
def test_copy_and_orm_give_the_same_bytes_on_the_reviewed_dataset(dataset, chunk_size):
    """The hand-checked dataset has a reviewed (fixed) annotation: the COPY path then reads each
    chunk's task ids first, for the reviewed labels."""
    for fmt, params in CASES:
        copy = _render(dataset.project, fmt, params, "copy", chunk_size)
        assert copy == _render(dataset.project, fmt, params, "orm", chunk_size), (fmt, params)
    assert _render(dataset.project, "jsonl", {}, "copy", chunk_size) == dataset.expected("native.jsonl")
    assert _render(dataset.project, "csv", {}, "copy", chunk_size) == dataset.expected("consolidated.csv")


@postgres_only
@pytest.mark.parametrize("chunk_size", [None, 2])
def test_copy_and_orm_give_the_same_bytes_on_tricky_values(tricky, chunk_size):
    for fmt, params in CASES:
        copy = _render(tricky, fmt, params, "copy", chunk_size)
        assert copy == _render(tricky, fmt, params, "orm", chunk_size), (fmt, params)
        if not params:
            assert len(copy) > 200, (fmt, copy)  # there is something to compare


@postgres_only
def test_copy_records_equal_orm_records_value_for_value(tricky):
    """Not only the bytes: the records (datetimes, floats, NaN, nested JSON) are equal."""
    options = parse_options({"mode": "raw"}, formats=FORMAT_NAMES)
    copy = list(selectors.export_records(project=tricky, options=options, source="copy", chunk_size=2))
    orm = list(selectors.export_records(project=tricky, options=options, source="orm"))
    assert len(copy) == len(orm) == 1 + 2 + 3 + 1 + 2 + 3

    def normal(value):  # NaN != NaN: compare it as a marker
        if isinstance(value, float) and math.isnan(value):
            return "NaN"
        if isinstance(value, dict):
            return {k: normal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [normal(v) for v in value]
        return value

    assert normal(copy) == normal(orm)
    first = copy[0]["annotation"]
    assert isinstance(first["submitted_at"], datetime) and isinstance(first["lead_time"], float)
    assert isinstance(copy[0]["article"]["published_at"], datetime)


@postgres_only
@pytest.mark.parametrize("source", ["copy", "orm"])
def test_resume_after_a_task_id(tricky, source):
    options = parse_options({}, formats=FORMAT_NAMES)
    ids = [r["task_id"] for r in selectors.export_records(project=tricky, options=options, source=source)]
    rest = [
        r["task_id"] for r in selectors.export_records(project=tricky, options=options, after=ids[2], source=source)
    ]
    assert rest == ids[3:]
    assert _render(tricky, "jsonl", {}, "copy", 2, after=ids[2]) == _render(tricky, "jsonl", {}, "orm", after=ids[2])


@postgres_only
def test_a_download_closed_early_leaves_the_connection_usable(tricky):
    options = parse_options({}, formats=FORMAT_NAMES)
    with connection.cursor() as cursor:
        cursor.execute("SET max_parallel_workers_per_gather = 3")
    records = selectors.export_records(project=tricky, options=options, source="copy", chunk_size=2)
    first = next(records)
    records.close()  # as when the client goes away mid-download
    assert first["task_id"] > 0
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")  # the session's own value is back
        assert cursor.fetchone() == ("3",)
    assert len(list(selectors.export_records(project=tricky, options=options))) == len(TRICKY_TEXTS)


@postgres_only
def test_rejected_annotations_and_reviewed_labels_match(tricky):
    ann = Annotation.objects.filter(project=tricky).order_by("id")[2]
    Annotation.objects.filter(pk=ann.pk).update(review_state=ReviewState.REJECTED)
    other = Annotation.objects.filter(project=tricky).order_by("id")[4]
    Annotation.objects.filter(pk=other.pk).update(
        review_state=ReviewState.FIXED, reviewed_result={"topic": "technology", "answer": "fixed \u2028"}
    )
    for fmt in ("jsonl", "csv", "hf"):
        assert _render(tricky, fmt, {}, "copy", 2) == _render(tricky, fmt, {}, "orm", 2)


def test_default_source_follows_the_database(dataset):
    options = parse_options({}, formats=FORMAT_NAMES)
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        list(selectors.export_records(project=dataset.project, options=options))
    copies = [q for q in queries if q["sql"].startswith("COPY (")]
    assert bool(copies) == (connection.vendor == "postgresql")


def _value(rng: random.Random):
    kind = rng.randrange(8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.randrange(-5, 10**6)
    if kind == 2:
        return rng.choice([0.1, 1.0, 1e-7, 1e22, 0.5, float("nan"), float("inf"), -0.0, 37.28373625192])
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return ""
    return "".join(rng.choice("a,\"\r\n \t\0é\\'|:\u2028;") for _ in range(rng.randrange(12)))


def test_csv_line_is_what_csv_writer_writes():
    rng = random.Random(7)
    for _ in range(20_000):
        row = [_value(rng) for _ in range(rng.randrange(1, 5))]
        expected = io.StringIO()
        csv.writer(expected).writerow(row)
        assert csv_line(row) == expected.getvalue(), row
