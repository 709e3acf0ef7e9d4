import pytest

from projects.assignment.models import Task
from projects.prelabel import services
from projects.prelabel.models import ChunkStatus, Prediction, PrelabelChunk, PrelabelRun, RunStatus
from tests import factories

pytestmark = pytest.mark.django_db

RULES = {
    "rules": [
        {"field": "topic", "value": "business", "keywords": ["bank", "market", "shares"]},
        {"field": "topic", "value": "politics", "keywords": ["senate", "budget"]},
        {"field": "entities", "label": "ORG", "gazetteer": ["Quantix", "Helios Bank"], "case_sensitive": True},
    ]
}


def url(project, suffix=""):
    return f"/api/v1/projects/{project.pk}/prelabel-runs/{suffix}"


def start(client, project, key=None, **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(url(project), {"labeler": "rules", "config": RULES, **body}, format="json", **headers)


@pytest.mark.parametrize("role, status", [("annotator", 403), ("reviewer", 403), ("outsider", 404), ("manager", 202)])
def test_only_managers_start_runs(request, client_for, project, tasks, role, status):
    user = request.getfixturevalue(role)
    assert start(client_for(user), project).status_code == status


@pytest.mark.parametrize("role, status", [("annotator", 403), ("outsider", 404), ("manager", 200)])
def test_only_managers_list_runs(request, client_for, project, role, status):
    user = request.getfixturevalue(role)
    assert client_for(user).get(url(project)).status_code == status


def test_run_predicts_every_task_and_sets_counts(
    client_for, project, manager, tasks, eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = start(client_for(manager), project, chunk_size=3)
    assert response.status_code == 202
    run = PrelabelRun.objects.get(pk=response.json()["id"])
    assert run.status == RunStatus.FINISHED and (run.total, run.done, run.failed) == (4, 4, 0)
    assert run.chunks.count() == 2
    predictions = Prediction.objects.filter(model_version=run.model_version)
    assert predictions.count() == 4
    first = predictions.get(task=tasks[0])
    assert first.result["entities"] == [{"start": 20, "end": 27, "label": "ORG", "text": "Quantix"}]
    assert predictions.get(task=tasks[1]).result["topic"] == "business"
    detail = client_for(manager).get(url(project, f"{run.pk}/")).json()
    assert detail["progress"] == 100.0 and detail["errors"] == []


def test_same_request_while_active_returns_the_same_run(client_for, project, manager, tasks):
    client = client_for(manager)
    first = start(client, project).json()
    second = start(client, project).json()
    assert first["id"] == second["id"]
    other = start(client, project, filter="unlabeled").json()
    assert other["id"] != first["id"]


def test_idempotency_key_returns_the_run_it_created(client_for, project, manager, tasks):
    client = client_for(manager)
    first = start(client, project, key="abc").json()
    PrelabelRun.objects.filter(pk=first["id"]).update(status=RunStatus.FINISHED)
    again = start(client, project, key="abc")
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    assert PrelabelRun.objects.count() == 1
    reused = client.post(
        url(project),
        {"labeler": "rules", "config": RULES, "filter": "unlabeled"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="abc",
    )
    assert reused.status_code == 409


def test_filters_choose_the_tasks(project, manager, tasks):
    tasks[0].required_skill = "coding"
    tasks[0].save()
    Task.objects.filter(pk=tasks[1].pk).update(submitted_count=1)
    for task_filter, expected in [
        ("unlabeled", {tasks[0].pk, tasks[2].pk, tasks[3].pk}),
        ({"skill": "coding"}, {tasks[0].pk}),
        ({"id_from": tasks[1].pk, "id_to": tasks[2].pk}, {tasks[1].pk, tasks[2].pk}),
    ]:
        run, _ = services.prelabel_run_start(
            project=project, actor=manager, labeler="rules", config=RULES, task_filter=task_filter
        )
        services.prelabel_run_plan(run_id=run.pk)
        ids = {i for chunk in run.chunks.all() for i in chunk.task_ids}
        assert ids == expected


def test_bad_filter_and_unknown_labeler_are_400(client_for, project, manager):
    client = client_for(manager)
    assert start(client, project, filter={"id_from": "x"}).status_code == 400
    response = client.post(url(project), {"labeler": "nope"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"]["labeler"] == "unknown"
    response = client.post(url(project), {"labeler": "ls_backend"}, format="json")
    assert response.status_code == 400


def test_a_chunk_processed_twice_stores_and_counts_once(project, manager, tasks):
    run, _ = services.prelabel_run_start(project=project, actor=manager, labeler="rules", config=RULES, chunk_size=10)
    services.prelabel_run_plan(run_id=run.pk)
    chunk = run.chunks.get()
    services.prelabel_chunk_process(chunk_id=chunk.pk)
    # A redelivered message (worker lost after commit, before the ack) finds the chunk done.
    assert services.prelabel_chunk_process(chunk_id=chunk.pk) == "already done"
    assert PrelabelChunk.objects.get(pk=chunk.pk).status == ChunkStatus.DONE
    run.refresh_from_db()
    assert (run.done, run.failed, run.status) == (4, 0, RunStatus.FINISHED)
    assert Prediction.objects.filter(model_version=run.model_version).count() == 4


def test_rerun_upserts_predictions_instead_of_duplicating(project, manager, tasks):
    for _ in range(2):
        run, _ = services.prelabel_run_start(project=project, actor=manager, labeler="rules", config=RULES)
        services.prelabel_run_plan(run_id=run.pk)
        for chunk in run.chunks.all():
            services.prelabel_chunk_process(chunk_id=chunk.pk)
    assert Prediction.objects.count() == 4


def test_cancel_skips_the_remaining_chunks(client_for, project, manager, tasks):
    run, _ = services.prelabel_run_start(project=project, actor=manager, labeler="rules", config=RULES, chunk_size=1)
    services.prelabel_run_plan(run_id=run.pk)
    chunks = list(run.chunks.order_by("index"))
    services.prelabel_chunk_process(chunk_id=chunks[0].pk)
    response = client_for(manager).post(url(project, f"{run.pk}/cancel/"))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    for chunk in chunks[1:]:
        assert services.prelabel_chunk_process(chunk_id=chunk.pk) == "skipped"
    run.refresh_from_db()
    assert run.done == 1 and Prediction.objects.count() == 1
    assert client_for(manager).post(url(project, f"{run.pk}/cancel/")).status_code == 409


def test_deleted_task_is_an_error_not_a_crash(project, manager, tasks):
    run, _ = services.prelabel_run_start(project=project, actor=manager, labeler="rules", config=RULES)
    services.prelabel_run_plan(run_id=run.pk)
    tasks[2].delete()
    services.prelabel_chunk_process(chunk_id=run.chunks.get().pk)
    run.refresh_from_db()
    assert (run.done, run.failed, run.status) == (3, 1, RunStatus.FINISHED)


def test_uncertainty_is_the_lowest_margin_over_the_tasks_predictions(project, manager, tasks):
    factories.PredictionFactory(task=tasks[1], model_version="other", margin=0.05)
    run, _ = services.prelabel_run_start(project=project, actor=manager, labeler="rules", config=RULES)
    services.prelabel_run_plan(run_id=run.pk)
    services.prelabel_chunk_process(chunk_id=run.chunks.get().pk)
    margins = dict(Prediction.objects.filter(model_version=run.model_version).values_list("task_id", "margin"))
    tasks_by_id = {t.pk: t for t in Task.objects.filter(project=project)}
    assert tasks_by_id[tasks[1].pk].uncertainty == pytest.approx(0.05)
    assert tasks_by_id[tasks[2].pk].uncertainty == pytest.approx(margins[tasks[2].pk])
    assert tasks_by_id[tasks[0].pk].uncertainty is None  # no choice field predicted, no margin


def test_empty_project_finishes_at_once(project, manager):
    run, _ = services.prelabel_run_start(project=project, actor=manager, labeler="rules", config=RULES)
    services.prelabel_run_plan(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED and run.total == 0


def test_start_enqueues_the_plan_after_commit(project, manager, tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        services.prelabel_run_start(project=project, actor=manager, labeler="rules", config=RULES)
    assert len(callbacks) == 1


def test_queue_serves_the_least_certain_task_first_after_a_run(client_for, project, manager, annotator, tasks):
    # tasks[1] ("bank ... market") is a clear business call, tasks[2] a clear politics call; the
    # fourth gets one business and one politics keyword: the smallest margin, so it comes first.
    tie = factories.TaskFactory(article__project=project, article__text="The bank and the senate.")
    project.queue_order = "uncertainty"
    project.save()
    run, _ = services.prelabel_run_start(project=project, actor=manager, labeler="rules", config=RULES)
    services.prelabel_run_plan(run_id=run.pk)
    services.prelabel_chunk_process(chunk_id=run.chunks.get().pk)
    assert Task.objects.get(pk=tie.pk).uncertainty == 0.0
    response = client_for(annotator).post(f"/api/v1/projects/{project.pk}/next-task/")
    assert response.status_code == 200
    assert response.json()["id"] == tie.pk
