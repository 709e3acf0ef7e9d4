"""Submit through the API: who may, what the body may hold and the answers to each mistake, what a
first submission, a resubmission and a draft leave behind, and the race of a verdict with a resubmit.

The endpoint reads and writes with SQL of its own (``projects.annotations.submission``); these
tests hold it to the rules and the answers of the ORM code it replaced.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from projects.annotations import submission
from projects.annotations.models import Annotation, AnnotationStatus, ReviewState
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.models import ReviewPolicy, Role
from tests import factories

pytestmark = pytest.mark.django_db

SPANS = [{"start": 0, "end": 15, "label": "PERSON"}]


def url(task) -> str:
    return f"/api/v1/tasks/{task if isinstance(task, int) else task.pk}/annotations/"


@pytest.fixture
def leased(project, annotator, client_for):
    """A task the annotator holds a live lease on, and their client."""
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    assert client.post(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == task.pk
    return task, client


def counters(task) -> tuple:
    row = Task.objects.get(pk=task.pk)
    return row.submitted_count, row.leased_count, row.is_complete


def test_first_submission_answers_every_field(leased, annotator):
    task, client = leased
    before = timezone.now()
    response = client.post(
        url(task), {"result": {"topic": "business", "entities": SPANS}, "lead_time": 3}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    annotation = Annotation.objects.get()
    assert set(body) == {
        "id", "task", "user", "username", "result", "status", "review_state", "reviewed_result", "lead_time",
        "prediction", "guideline_version", "created_at", "updated_at", "submitted_at",
    }  # fmt: skip
    assert body["id"] == annotation.pk and body["task"] == task.pk and body["user"] == annotator.pk
    assert body["username"] == "anna" and body["status"] == "submitted" and body["review_state"] == ""
    assert body["result"] == {
        "topic": "business",
        "entities": [{"start": 0, "end": 15, "label": "PERSON", "text": "Elena Marchetti"}],
    }
    assert body["reviewed_result"] is None and body["prediction"] is None
    assert body["lead_time"] == 3.0 and body["guideline_version"] == 1
    assert body["submitted_at"].endswith("Z") and body["created_at"].endswith("Z")
    assert annotation.submitted_at >= before and annotation.result == body["result"]
    assert annotation.draft is None and annotation.project_id == task.project_id
    assert counters(task) == (1, 0, True)
    assignment = Assignment.objects.get(task=task, user=annotator)
    assert assignment.status == AssignmentStatus.SUBMITTED and assignment.expires_at is None


def test_resubmission_updates_adds_lead_time_and_keeps_prediction_and_counters(leased, project):
    task, client = leased
    prediction = factories.PredictionFactory(task=task)
    first = client.post(url(task), {"result": {"topic": "business"}, "lead_time": 2.5, "prediction": prediction.pk})
    assert first.status_code == 201 and first.json()["prediction"] == prediction.pk
    again = client.post(url(task), {"result": {"topic": "politics"}, "lead_time": 1}, format="json")
    assert again.status_code == 200
    body = again.json()
    assert body["id"] == first.json()["id"] and body["created_at"] == first.json()["created_at"]
    assert body["lead_time"] == 3.5 and body["prediction"] == prediction.pk and body["result"] == {"topic": "politics"}
    assert Annotation.objects.get().lead_time == 3.5
    assert counters(task) == (1, 0, True)


def test_lead_time_is_capped_at_a_day(leased):
    task, client = leased
    client.post(url(task), {"result": {"topic": "business"}, "lead_time": 80_000}, format="json")
    body = client.post(url(task), {"result": {"topic": "business"}, "lead_time": 80_000}, format="json").json()
    assert body["lead_time"] == 24 * 3600.0


def test_draft_then_submit_clears_the_draft_and_sums_the_time(leased):
    task, client = leased
    client.put(f"/api/v1/tasks/{task.pk}/draft/", {"result": {"topic": "business"}, "lead_time": 4}, format="json")
    response = client.post(url(task), {"result": {"topic": "politics"}, "lead_time": 1}, format="json")
    assert response.status_code == 201 and response.json()["lead_time"] == 5.0
    annotation = Annotation.objects.get()
    assert annotation.draft is None and annotation.status == AnnotationStatus.SUBMITTED
    assert counters(task) == (1, 0, True)


def test_guideline_version_is_checked_and_stored(leased, project):
    task, client = leased
    project.guidelines_version = 3
    project.save()
    bad = client.post(url(task), {"result": {"topic": "business"}, "guideline_version": 4}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"] == {
        "code": "validation_failed",
        "message": "guideline_version must be a version of this project's guidelines (1 to 3).",
        "fields": {"guideline_version": "unknown version"},
    }
    ok = client.post(url(task), {"result": {"topic": "business"}, "guideline_version": 2}, format="json")
    assert ok.status_code == 201 and ok.json()["guideline_version"] == 2
    default = client.post(url(task), {"result": {"topic": "business"}}, format="json")
    assert default.json()["guideline_version"] == 3


@pytest.mark.parametrize("prediction", ["other", 2**70, -1])
def test_a_prediction_of_another_task_or_none_is_refused(leased, project, prediction):
    task, client = leased
    other = factories.PredictionFactory(task=factories.TaskFactory(article__project=project))
    value = other.pk if prediction == "other" else prediction
    response = client.post(url(task), {"result": {"topic": "business"}, "prediction": value}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "validation_failed",
        "message": "That prediction does not belong to this task.",
        "fields": {"prediction": "not found"},
    }
    assert not Annotation.objects.exists() and counters(task) == (0, 1, False)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"result": "This field is required."}),
        ({"result": None}, {"result": "This field may not be null."}),
        (
            {"result": {"topic": "business"}, "lead_time": -1},
            {"lead_time": "Ensure this value is greater than or equal to 0."},
        ),
        ({"result": {"topic": "business"}, "lead_time": None}, {"lead_time": "This field may not be null."}),
        ({"result": {"topic": "business"}, "lead_time": "soon"}, {"lead_time": "A valid number is required."}),
        ({"result": {"topic": "business"}, "prediction": "x"}, {"prediction": "A valid integer is required."}),
        (
            {"result": {"topic": "business"}, "guideline_version": 1.5},
            {"guideline_version": "A valid integer is required."},
        ),
        ([{"result": {}}], {"non_field_errors": "Invalid data. Expected a dictionary, but got list."}),
    ],
    ids=repr,
)
def test_bodies_the_serializer_refuses_keep_its_answers(leased, body, fields):
    task, client = leased
    response = client.post(url(task), body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["fields"] == fields
    assert not Annotation.objects.exists() and counters(task) == (0, 1, False)


@pytest.mark.parametrize(
    ("extra", "lead_time"), [({"lead_time": "2.5"}, 2.5), ({"lead_time": True}, 1.0), ({"lead_time": 7}, 7.0)]
)
def test_values_the_serializer_converts_are_taken(leased, extra, lead_time):
    task, client = leased
    response = client.post(url(task), {"result": {"topic": "business"}, **extra}, format="json")
    assert response.status_code == 201 and response.json()["lead_time"] == lead_time


def test_prediction_and_version_sent_as_strings_are_taken(leased, project):
    task, client = leased
    prediction = factories.PredictionFactory(task=task)
    body = {"result": {"topic": "business"}, "prediction": str(prediction.pk), "guideline_version": "1"}
    response = client.post(url(task), body, format="json")
    assert response.status_code == 201
    assert response.json()["prediction"] == prediction.pk and response.json()["guideline_version"] == 1


def test_form_encoded_bodies_go_through_the_serializer(leased):
    task, client = leased
    response = client.post(url(task), {"result": '{"topic": "business"}', "lead_time": "2"}, format="multipart")
    assert response.status_code == 201
    assert response.json()["result"] == {"topic": "business"} and response.json()["lead_time"] == 2.0


@pytest.mark.parametrize("body", [{"result": {"topic": "business"}}, {"result": None}, {}, ["x"]], ids=repr)
def test_strangers_get_404_whatever_the_body(project, outsider, client_for, body):
    task = factories.TaskFactory(article__project=project)
    response = client_for(outsider).post(url(task), body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not Annotation.objects.exists()


@pytest.mark.parametrize("task_id", [0, 2**63, 2**70])
def test_task_ids_past_any_row_are_404(annotator, client_for, task_id):
    response = client_for(annotator).post(url(task_id), {"result": {"topic": "business"}}, format="json")
    assert response.status_code == 404


def test_a_reviewer_may_submit_on_any_task_of_the_project(project, reviewer, client_for):
    task = factories.TaskFactory(article__project=project)
    response = client_for(reviewer).post(url(task), {"result": {"topic": "business"}}, format="json")
    assert response.status_code == 201
    assert counters(task) == (1, 0, True)
    assert Assignment.objects.get(task=task, user=reviewer).status == AssignmentStatus.SUBMITTED


def test_superusers_who_are_not_members_may_submit_members_follow_their_role(project, client_for):
    task = factories.TaskFactory(article__project=project)
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    assert client_for(root).post(url(task), {"result": {"topic": "business"}}, format="json").status_code == 201
    member_root = get_user_model().objects.create_superuser("root2", "root2@example.com", "x")
    factories.MembershipFactory(project=project, user=member_root, role=Role.ANNOTATOR)
    other = factories.TaskFactory(article__project=project)
    response = client_for(member_root).post(url(other), {"result": {"topic": "business"}}, format="json")
    assert response.status_code == 404


def test_a_full_task_refuses_a_user_without_a_live_lease(project, annotator, reviewer, client_for):
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    # The lease runs out and the reviewer takes the only slot meanwhile.
    Assignment.objects.filter(task=task, user=annotator).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert client_for(reviewer).post(url(task), {"result": {"topic": "business"}}, format="json").status_code == 201
    response = client.post(url(task), {"result": {"topic": "politics"}}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "task_full"
    assert Annotation.objects.count() == 1 and counters(task) == (1, 1, True)


def test_an_expired_lease_may_still_submit_while_a_slot_is_free(project, annotator, client_for):
    project.overlap = 2
    project.save()
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    Assignment.objects.filter(task=task, user=annotator).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.post(url(task), {"result": {"topic": "business"}}, format="json")
    assert response.status_code == 201
    assert counters(task) == (1, 0, False)  # the stale lease is released with the submission


def test_spans_are_checked_against_the_segment_in_code_points(project, annotator, reviewer, client_for):
    text = "Intro 👩‍🔬 line.\r\nZoë Ærø 𝔘𝔫𝔦 met ACME in Zürich."
    article = factories.ArticleFactory(project=project, text=text)
    start = text.index("Zoë")
    task = factories.TaskFactory(article=article, segment_index=1, start_offset=start, end_offset=len(text))
    open_ended = factories.TaskFactory(article=article, segment_index=2, start_offset=6, end_offset=None)
    client = client_for(annotator)
    assert client.post(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == task.pk
    segment = text[start:]
    spans = [
        {"start": segment.index("𝔘𝔫𝔦"), "end": segment.index("𝔘𝔫𝔦") + 3, "label": "PERSON"},
        {"start": segment.index("Zürich"), "end": len(segment) - 1, "label": "LOC", "text": "Zürich"},
    ]
    response = client.post(url(task), {"result": {"entities": spans}}, format="json")
    assert response.status_code == 201, response.json()
    assert [s["text"] for s in response.json()["result"]["entities"]] == ["𝔘𝔫𝔦", "Zürich"]
    wrong = {"start": 0, "end": 3, "label": "ORG", "text": "Int"}
    response = client.post(url(task), {"result": {"entities": [wrong]}}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"entities[0]": "text 'Int' does not match the text at [0, 3) ('Zoë')"}
    # A segment without an end runs to the end of the article.
    span = {"start": 0, "end": 3, "label": "ORG", "text": text[6:9]}
    response = client_for(reviewer).post(url(open_ended), {"result": {"entities": [span]}}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["result"]["entities"][0]["text"] == "👩‍🔬"


def test_resubmitting_after_a_rejection_goes_back_to_pending(leased, project, reviewer, client_for):
    task, client = leased
    annotation_id = client.post(url(task), {"result": {"topic": "business"}}, format="json").json()["id"]
    Annotation.objects.filter(pk=annotation_id).update(review_state=ReviewState.REJECTED)
    response = client.post(url(task), {"result": {"topic": "politics"}}, format="json")
    assert response.status_code == 200 and response.json()["review_state"] == ReviewState.PENDING


def test_sampled_review_of_an_existing_draft_is_drawn_by_its_id(leased, project):
    from projects.annotations.reviews import in_review_sample

    project.review_policy = ReviewPolicy.SAMPLE
    project.review_sample_percent = 50
    project.save()
    task, client = leased
    client.put(f"/api/v1/tasks/{task.pk}/draft/", {"result": {"topic": "business"}}, format="json")
    draft_id = Annotation.objects.get().pk
    body = client.post(url(task), {"result": {"topic": "business"}}, format="json").json()
    wanted = in_review_sample(project_id=project.pk, annotation_id=draft_id, percent=50)
    assert body["id"] == draft_id
    assert body["review_state"] == (ReviewState.PENDING if wanted else ReviewState.NONE)
    assert Annotation.objects.get().review_state == body["review_state"]


def test_a_verdict_that_lands_between_the_read_and_the_write_wins(leased, project, monkeypatch):
    task, client = leased
    first = client.post(url(task), {"result": {"topic": "business"}}, format="json").json()
    read = submission.lock_and_read

    def read_then_accept(**kwargs):
        locked = read(**kwargs)
        # A reviewer accepts it now: verdicts do not wait for the task lock.
        Annotation.objects.filter(pk=first["id"]).update(review_state=ReviewState.ACCEPTED, reviewed_result={"x": 1})
        return locked

    monkeypatch.setattr(submission, "lock_and_read", read_then_accept)
    response = client.post(url(task), {"result": {"topic": "politics"}, "lead_time": 9}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_reviewed"
    # (The stand-in verdict ran inside the submit's transaction, so it rolled back with it.)
    annotation = Annotation.objects.get()
    assert annotation.result == {"topic": "business"} and annotation.lead_time == 0
    assert counters(task) == (1, 0, True)


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="psycopg's prepared statements are PostgreSQL's")
def test_a_rollback_between_submissions_on_one_connection_breaks_nothing(leased, project):
    """psycopg answers a ROLLBACK with DEALLOCATE ALL once it has prepared statements (the token
    lookup and the queue's); the next submission on that connection must still work."""
    from django.db import connection, transaction

    task, client = leased
    for _ in range(2):  # the held lease again: psycopg prepares the queue's statements
        assert client.post(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == task.pk
    assert client.post(url(task), {"result": {"topic": "business"}}, format="json").status_code == 201
    with transaction.atomic():
        sid = transaction.savepoint()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        transaction.savepoint_rollback(sid)  # a ROLLBACK TO SAVEPOINT, as a failed request's
    assert client.post(url(task), {"result": {"topic": "politics"}}, format="json").status_code == 200


# The submit's statements as PostgreSQL lists them once prepared: the lock, the read, the write.
_SUBMIT_STATEMENTS = {
    "lock": "SELECT t.id FROM assignment_task t",
    "read": "SELECT t.project_id, t.submitted_count",
    "write": "WITH annotation AS (INSERT INTO annotations_annotation",
}


def prepared_submit_statements() -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        texts = [row[0].lstrip() for row in cursor.fetchall()]
    return {name for name, start in _SUBMIT_STATEMENTS.items() if any(t.startswith(start) for t in texts)}


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="psycopg's prepared statements are PostgreSQL's")
def test_the_submit_statements_are_prepared_and_a_rollback_after_that_breaks_nothing(leased, project, annotator):
    """From its third run on one connection each submit statement is prepared. A failed submission
    rolls back (here its atomic block, a ROLLBACK TO SAVEPOINT inside the test's transaction), and
    psycopg answers with DEALLOCATE ALL; the next submissions still work and prepare them again."""
    task, client = leased
    body = {"result": {"topic": "business", "entities": SPANS}, "lead_time": 1.5}
    assert client.post(url(task), body, format="json").status_code == 201
    for _ in range(3):  # the same lock, read and (resubmission) write each time
        assert client.post(url(task), body, format="json").status_code == 200
    assert prepared_submit_statements() == {"lock", "read", "write"}
    refused = client.post(url(task), {"result": {"topic": "no such topic"}}, format="json")
    assert refused.status_code == 400  # refused after the lock and the read ran
    assert prepared_submit_statements() == set()
    for topic in ("politics", "technology", "politics", "technology"):
        response = client.post(url(task), {"result": {"topic": topic}, "lead_time": 1}, format="json")
        assert response.status_code == 200 and response.json()["result"] == {"topic": topic}
    assert prepared_submit_statements() == {"lock", "read", "write"}
    annotation = Annotation.objects.get()
    assert annotation.result == {"topic": "technology"} and annotation.lead_time == 10.0
    assert counters(task) == (1, 0, True)
    assert Assignment.objects.get(task=task, user=annotator).status == AssignmentStatus.SUBMITTED


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="psycopg's prepared statements are PostgreSQL's")
def test_prepared_submits_bind_json_text_and_times_as_the_plain_ones(project, annotator, client_for):
    """Values bound on the server: the result (JSON with quotes, backslashes, non-ASCII text and a
    percent sign), the lead time and the timestamps are stored as sent, prepared or not."""
    client = client_for(annotator)
    text = 'Zoë "Ā" \\ 100% 東京'
    for i in range(4):  # first submissions: the first two unprepared, the next two prepared
        task = factories.TaskFactory(article__project=project, article__text=f"{text} {i}")
        assert client.post(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == task.pk
        before = timezone.now()
        entities = [{"start": 0, "end": len(text), "label": "PERSON"}]
        response = client.post(
            url(task), {"result": {"topic": "business", "entities": entities}, "lead_time": 0.25}, format="json"
        )
        assert response.status_code == 201
        annotation = Annotation.objects.get(task=task)
        assert annotation.result["entities"][0]["text"] == text == response.json()["result"]["entities"][0]["text"]
        assert annotation.lead_time == 0.25
        assert before <= annotation.created_at == annotation.submitted_at <= timezone.now()
        assert Assignment.objects.get(task=task, user=annotator).expires_at is None
    assert prepared_submit_statements() >= {"lock", "read"}


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="prepared statements are PostgreSQL's")
def test_with_prepared_statements_turned_off_the_submit_prepares_nothing(leased, settings):
    settings.DB_PREPARED_STATEMENTS = False
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # psycopg sees it and forgets its own list too
    task, client = leased
    assert client.post(url(task), {"result": {"topic": "business"}}, format="json").status_code == 201
    for _ in range(3):
        assert client.post(url(task), {"result": {"topic": "politics"}}, format="json").status_code == 200
    assert prepared_submit_statements() == set()
    assert Annotation.objects.get().result == {"topic": "politics"}


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="prepared statements are PostgreSQL's")
@pytest.mark.parametrize(("option", "value"), [("DISABLE_SERVER_SIDE_CURSORS", True), ("CONN_MAX_AGE", 0)])
def test_without_prepared_statements_the_sql_is_sent_as_is(leased, monkeypatch, option, value):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setitem(connection.settings_dict, option, value)
    task, client = leased
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url(task), {"result": {"topic": "business", "entities": SPANS}}, format="json")
    assert response.status_code == 201
    assert response.json()["result"]["entities"][0]["text"] == "Elena Marchetti"
    assert counters(task) == (1, 0, True)
    assert not [q["sql"] for q in queries.captured_queries if "PREPARE" in q["sql"] or "EXECUTE" in q["sql"]]


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="psycopg's pipeline mode is PostgreSQL's")
def test_without_pipeline_mode_the_lock_and_the_read_go_as_one_string(leased, monkeypatch):
    """A libpq older than 14 has no pipeline mode: the two statements are sent as one string."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotator import db

    monkeypatch.setattr(db, "_pipeline_supported", lambda: False)
    task, client = leased
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url(task), {"result": {"topic": "business", "entities": SPANS}}, format="json")
    assert response.status_code == 201 and response.json()["result"]["entities"][0]["text"] == "Elena Marchetti"
    assert any("FOR UPDATE OF t;" in q["sql"] and "t.submitted_count" in q["sql"] for q in queries.captured_queries)
    assert counters(task) == (1, 0, True)
