import pytest

from projects.core import events
from tests import factories


@pytest.fixture
def received():
    seen: list[tuple] = []

    def handler(name, project_id, data):
        seen.append((name, project_id, data))

    events.subscribe(handler)
    yield seen
    events._handlers.remove(handler)


@pytest.mark.django_db
def test_submit_emits_after_commit(client_for, project, annotator, received, django_capture_on_commit_callbacks):
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "business"}}, format="json")
    assert [name for name, _, _ in received] == ["task.completed", "annotation.submitted"]
    assert received[1][2]["task_id"] == task.pk


@pytest.mark.django_db
def test_rejected_submit_emits_nothing(client_for, project, annotator, received, django_capture_on_commit_callbacks):
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "nope"}}, format="json")
    assert received == []


@pytest.mark.django_db
def test_the_events_of_one_submission_read_each_memo_once(
    client_for, project, annotator, received, monkeypatch, django_capture_on_commit_callbacks
):
    from projects.core import memo

    reads: list[str] = []
    get = memo.cache.get

    def counting_get(key, *args, **kwargs):
        reads.append(key)
        return get(key, *args, **kwargs)

    monkeypatch.setattr(memo.cache, "get", counting_get)
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "business"}}, format="json")
    assert [name for name, _, _ in received] == ["task.completed", "annotation.submitted"]
    memo_reads = [key for key in reads if key.startswith("memo:")]
    assert sorted(memo_reads) == sorted(set(memo_reads)) and len(memo_reads) == 2  # webhooks, retraining


def test_a_memo_forgotten_inside_a_scope_is_computed_again():
    from projects.core import memo

    computed: list[int] = []

    def compute() -> list[int]:
        computed.append(1)
        return [len(computed)]

    with memo.scope():
        assert memo.project_memo("t", 1, compute) == [1]
        assert memo.project_memo("t", 1, compute) == [1]
        memo.project_memo_forget("t", 1)
        assert memo.project_memo("t", 1, compute) == [2]
    assert memo.project_memo("t", 1, compute) == [2]  # from the cache, outside the scope
    memo.project_memo_forget("t", 1)
