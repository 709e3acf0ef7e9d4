import pytest

from projects.core import events
from tests import factories


class _CountingCache:
    """The memo module's cache, recording its reads (not those the cache makes of itself)."""

    def __init__(self, cache, calls: list[tuple]) -> None:
        self._cache, self._calls = cache, calls

    def get(self, key, *args, **kwargs):
        self._calls.append(("get", key))
        return self._cache.get(key, *args, **kwargs)

    def get_many(self, keys, *args, **kwargs):
        self._calls.append(("get_many", tuple(sorted(keys))))
        return self._cache.get_many(keys, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._cache, name)


def _counting(monkeypatch, calls: list[tuple]) -> None:
    from projects.core import memo

    monkeypatch.setattr(memo, "cache", _CountingCache(memo.cache, calls))


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
    calls: list[tuple] = []
    _counting(monkeypatch, calls)
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "business"}}, format="json")
    assert [name for name, _, _ in received] == ["task.completed", "annotation.submitted"]
    # Not in the cache yet: one fetch of both, then one read of each when it is computed.
    memo_reads = [key for call, key in calls if call == "get" and key.startswith("memo:")]
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


@pytest.mark.django_db
def test_the_memos_of_a_submission_come_in_one_cache_round_trip(
    client_for, project, annotator, monkeypatch, django_capture_on_commit_callbacks
):
    tasks = [factories.TaskFactory(article__project=project) for _ in range(2)]
    client = client_for(annotator)
    calls: list[tuple] = []
    _counting(monkeypatch, calls)
    for task in tasks:
        calls.clear()
        assert client.post(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == task.pk
        with django_capture_on_commit_callbacks(execute=True):
            body = {"result": {"topic": "business"}}
            assert client.post(f"/api/v1/tasks/{task.pk}/annotations/", body, format="json").status_code == 201
    keys = (f"memo:retrain-labelers:{project.pk}", f"memo:webhooks:{project.pk}")
    assert [call for call in calls if call[0] == "get_many" or call[1].startswith("memo:")] == [("get_many", keys)]


@pytest.mark.django_db
def test_the_memos_are_computed_when_the_cache_cannot_be_read(
    project, monkeypatch, settings, received, django_capture_on_commit_callbacks
):
    from projects.core import memo
    from projects.exports import webhooks
    from projects.exports.models import WebhookDelivery
    from projects.exports.webhooks import webhook_create

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    monkeypatch.setattr(webhooks.dispatch, "enqueue", lambda job, *args, **kwargs: None)

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    manager = factories.UserFactory()
    factories.MembershipFactory(project=project, user=manager, role="manager")
    webhook_create(project=project, actor=manager, url="http://127.0.0.1:9/hook", events=["annotation.submitted"])
    monkeypatch.setattr(memo.cache, "get_many", down)
    monkeypatch.setattr(memo.cache, "get", down)
    with django_capture_on_commit_callbacks(execute=True):
        events.emit("annotation.submitted", project_id=project.pk, data={"annotation_id": 1, "first": True})
    assert [name for name, _, _ in received] == ["annotation.submitted"]
    assert WebhookDelivery.objects.filter(event="annotation.submitted").count() == 1
