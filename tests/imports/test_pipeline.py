"""PostgreSQL imports write each batch on a second thread while the next one is parsed: the counts,
errors and rows are those of the sequential path, and a failure or cancel in the writer stops it."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from projects.assignment.models import Task
from projects.documents.models import Article
from projects.imports import services


def test_pipe_stops_after_a_cancelled_batch_and_reraises_writer_errors():
    written = []
    pipe = services._BatchPipe(lambda rows: written.append(rows) or len(written) < 2)
    assert pipe.put([1]) and pipe.put([2])
    pipe.close()
    assert written == [[1], [2]] and not pipe.put([3])  # the second batch saw the job cancelled

    def boom(rows):
        raise RuntimeError("disk full")

    pipe = services._BatchPipe(boom)
    pipe.put([1])
    with pytest.raises(RuntimeError, match="disk full"):
        pipe.close()


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="the writer thread is used on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_pipelined_import_counts_rows_and_errors_like_the_sequential_one(
    client_for, manager, project, media, monkeypatch
):
    pipes = []
    monkeypatch.setattr(services, "_BatchPipe", lambda write: pipes.append(services_pipe(write)) or pipes[-1])
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
    assert len(pipes) == 1  # the import went through the writer thread
    assert job["status"] == "succeeded", job
    counts = [job[k] for k in ("rows_read", "rows_created", "rows_updated", "rows_unchanged", "rows_failed")]
    assert counts == [28, 25, 0, 0, 3] and job["tasks_created"] == 25
    assert [e["line"] for e in job["errors"]] == [6, 7, 8]
    assert "duplicate id 'p3'" in job["errors"][2]["message"]
    assert Article.objects.filter(project=project).count() == 25
    assert Task.objects.filter(project=project).count() == 25
    again = run()
    assert (again["rows_created"], again["rows_unchanged"], again["tasks_created"]) == (0, 25, 0)


services_pipe = services._BatchPipe
