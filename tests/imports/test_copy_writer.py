"""PostgreSQL imports write each batch with COPY and one upsert statement: counts, row errors and
rows are those of the ORM path, and a re-import creates nothing."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from projects.assignment.models import Task
from projects.documents.models import Article
from projects.imports import services


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="the COPY writer is used on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_copy_writer_import_counts_rows_and_errors_in_batches(client_for, manager, project, media, monkeypatch):
    writers = []
    real = services.CopyWriter
    monkeypatch.setattr(services, "CopyWriter", lambda **kw: writers.append(real(**kw)) or writers[-1])
    rows = [json.dumps({"id": f"p{i}", "text": f"Text {i}.", "domain": "news"}) for i in range(25)]
    rows[5:5] = ["{not json", json.dumps({"id": "empty", "text": "  "}), json.dumps({"id": "p3", "text": "Again."})]
    content = ("\n".join(rows) + "\n").encode()
    client = client_for(manager)
    url = f"/api/v1/projects/{project.pk}/imports/"

    def run():
        data = {"file": SimpleUploadedFile("p.jsonl", content), "batch_size": "4", "split": "paragraph"}
        response = client.post(url, data, format="multipart")
        assert response.status_code == 202, response.content
        return client.get(f"{url}{response.json()['id']}/").json()

    job = run()
    assert len(writers) == 1  # the import went through the COPY writer
    assert job["status"] == "succeeded", job
    counts = [job[k] for k in ("rows_read", "rows_created", "rows_updated", "rows_unchanged", "rows_failed")]
    assert counts == [28, 25, 0, 0, 3] and job["tasks_created"] == 25
    assert [e["line"] for e in job["errors"]] == [6, 7, 8]
    assert "duplicate id 'p3'" in job["errors"][2]["message"]
    assert Article.objects.filter(project=project).count() == 25
    assert Task.objects.filter(project=project).count() == 25
    again = run()
    assert (again["rows_created"], again["rows_unchanged"], again["tasks_created"]) == (0, 25, 0)


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="the COPY writer is used on PostgreSQL only")
@pytest.mark.django_db
def test_copied_is_called_once_the_rows_are_sent_and_before_they_are_written(project):
    from django.db import connection

    from projects.imports.mapping import ArticleRow
    from projects.imports.options import ImportOptions
    from projects.imports.writer import STAGE, CopyWriter

    seen = []

    def copied():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {STAGE}")
            seen.append((cursor.fetchone()[0], Article.objects.filter(project=project).count()))

    writer = CopyWriter(project=project, options=ImportOptions(), user_id=None, member_emails={})
    rows = [ArticleRow(external_id=f"c{i}", text=f"Text {i}.") for i in range(5)]
    assert writer.write(rows, copied=copied)["rows_created"] == 5
    assert seen == [(5, 0)]  # staged, not yet upserted
    assert Article.objects.filter(project=project).count() == 5


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="the COPY writer is used on PostgreSQL only")
@pytest.mark.django_db
def test_copy_and_orm_writers_store_the_same_values(project):
    """The binary COPY carries every value as the ORM path stores it: control characters,
    backslashes, non-BMP characters, time zones, JSON with integers beyond 64 bits, offsets."""
    from datetime import datetime, timedelta, timezone

    from projects.imports.mapping import ArticleRow
    from projects.imports.options import ImportOptions
    from projects.imports.writer import BatchWriter, CopyWriter

    def rows(prefix: str) -> list:
        return [
            ArticleRow(
                external_id=f"{prefix}\\1\t",
                text="Tab\there, newline\nthen \\N and \\. and emoji \U0001f600.\n\nSecond paragraph.",
                title='Quote " and comma , and semicolon ;',
                source="src\r\n",
                url="https://example.org/a?b=1&c=%20",
                published_at=datetime(1999, 12, 31, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=-5))),
                domain="news",
                meta={"big": 2**70, "nested": {"list": [1, "two", None, 3.5]}, "tab": "a\tb"},
                payload={"response": "r\\n"},
                skill="coding",
                priority=-(2**31),
                gold={"t": "gold \u00e9"},
            ),
            ArticleRow(external_id=f"{prefix}2", text="Plain.", priority=2**31 - 1),
        ]

    fields = ("title", "text", "source", "url", "published_at", "domain", "meta")
    task_fields = ("payload", "required_skill", "priority", "is_gold", "gold_answer", "segment_index")
    stored = []
    for prefix, writer_class in (("copy-", CopyWriter), ("orm-", BatchWriter)):
        writer = writer_class(project=project, options=ImportOptions(), user_id=None, member_emails={})
        assert writer.write(rows(prefix))["rows_created"] == 2
        articles = Article.objects.filter(project=project, external_id__startswith=prefix).order_by("id")
        tasks = Task.objects.filter(project=project, article__external_id__startswith=prefix).order_by("id")
        stored.append(
            (
                [a.external_id.removeprefix(prefix) for a in articles],
                list(articles.values_list(*fields)),
                list(tasks.values_list(*task_fields)),
            )
        )
    assert stored[0] == stored[1]
    assert stored[0][1][0][6]["big"] == 2**70
