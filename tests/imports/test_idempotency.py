import json

import pytest

from projects.annotations.models import Annotation
from projects.assignment.models import Task
from projects.documents.models import Article
from projects.imports.mapping import content_id
from tests import factories

pytestmark = pytest.mark.django_db


def jsonl(rows) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


ROWS = [{"id": f"a{i}", "title": f"T{i}", "text": f"Text number {i}."} for i in range(30)]


def test_same_file_twice_creates_nothing_new(upload, project):
    first = upload("a.jsonl", jsonl(ROWS), batch_size="7").json()
    assert (first["rows_created"], first["tasks_created"]) == (30, 30)
    second = upload("a.jsonl", jsonl(ROWS), batch_size="7").json()
    assert (second["rows_created"], second["rows_updated"], second["rows_unchanged"], second["tasks_created"]) == (
        0,
        0,
        30,
        0,
    )
    assert Article.objects.filter(project=project).count() == 30
    assert Task.objects.filter(project=project).count() == 30


def test_file_without_ids_gets_stable_hash_ids(upload, project):
    rows = [{"title": "One", "text": "Same text."}, {"title": "Two", "text": "Other text."}]
    upload("a.jsonl", jsonl(rows))
    again = upload("b.jsonl", jsonl([{"title": "One", "text": "  Same   text. "}, *rows[1:]])).json()
    assert (again["rows_created"], again["rows_unchanged"] + again["rows_updated"]) == (0, 2)
    assert Article.objects.filter(project=project).count() == 2
    assert Article.objects.filter(external_id=content_id("One", "Same text.")).exists()


def test_changed_text_updates_the_article_and_keeps_annotations(upload, project, annotator):
    upload("a.jsonl", jsonl(ROWS[:2]))
    task = Task.objects.get(article__external_id="a0")
    annotation = factories.AnnotationFactory(task=task, user=annotator, result={"topic": "politics"})
    changed = [{"id": "a0", "title": "T0 (fixed)", "text": "Corrected text.", "domain": "science"}, ROWS[1]]
    body = upload("a.jsonl", jsonl(changed)).json()
    assert (body["rows_created"], body["rows_updated"], body["rows_unchanged"], body["tasks_created"]) == (0, 1, 1, 0)
    article = Article.objects.get(external_id="a0")
    assert (article.title, article.text, article.domain) == ("T0 (fixed)", "Corrected text.", "science")
    annotation.refresh_from_db()
    assert annotation.result == {"topic": "politics"} and annotation.task_id == task.pk
    assert Task.objects.filter(article=article).count() == 1 and Annotation.objects.count() == 1


def test_same_external_id_in_another_project_is_another_article(upload, project):
    other = factories.ArticleFactory(external_id="a0", text="Other project's text.")
    upload("a.jsonl", jsonl(ROWS[:1]))
    other.refresh_from_db()
    assert other.text == "Other project's text."
    assert Article.objects.filter(external_id="a0").count() == 2


def test_running_a_finished_job_again_changes_nothing(upload, project):
    from projects.imports import services
    from projects.imports.models import ImportJob

    upload("a.jsonl", jsonl(ROWS[:3]))
    job = ImportJob.objects.get()
    before = (job.status, job.rows_created, job.finished_at)
    job = services.import_run(job=job)
    assert (job.status, job.rows_created, job.finished_at) == before
    assert Article.objects.count() == 3
