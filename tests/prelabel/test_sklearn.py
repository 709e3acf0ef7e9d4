import pytest

from projects.annotations.models import Annotation
from projects.core import events
from projects.prelabel import services, training
from projects.prelabel.labelers import (
    LabelerConfigError,
    LabelerContext,
    LabelerUnavailable,
    TaskInput,
    build_labeler,
    sklearn_model,
)
from projects.prelabel.models import Labeler, Prediction, RunStatus, TrainedModel
from tests import factories

pytestmark = pytest.mark.django_db

BUSINESS = "Helios Bank shares rose as the market rallied and investors bought stock in Quantix."
POLITICS = "The senate vote on the budget bill split the parliament and the minister resigned."


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    sklearn_model._cache.clear()


def annotate(project, text, topic, spans=()):
    task = factories.TaskFactory(article__project=project, article__text=text)
    result = {"topic": topic}
    if spans:
        result["entities"] = [
            {"start": text.index(s), "end": text.index(s) + len(s), "label": label, "text": s} for s, label in spans
        ]
    return factories.AnnotationFactory(task=task, project=project, result=result)


@pytest.fixture
def trained(project, manager):
    for i in range(6):
        annotate(project, f"{BUSINESS} Day {i}.", "business", [("Helios Bank", "ORG"), ("Quantix", "ORG")])
        annotate(project, f"{POLITICS} Day {i}.", "politics")
    return training.model_train(project=project, actor=manager)


def test_training_versions_models_and_records_a_checksum(project, manager, trained):
    assert trained.model_version == "sklearn-1" and trained.annotation_count == 12
    assert len(trained.sha256) == 64 and trained.path.startswith(f"prelabel/project-{project.pk}/")
    assert trained.info["fields"]["topic"]["classes"] == ["business", "politics"]
    assert training.model_train(project=project, actor=manager).model_version == "sklearn-2"


def test_model_predicts_choices_with_probability_and_spans_from_the_dictionary(project, trained):
    labeler = build_labeler(
        "sklearn", config={}, context=LabelerContext(project.pk, project.label_schema, trained.model_version)
    )
    text = "Investors said Quantix stock and the market rallied."
    business, politics = labeler.predict([TaskInput(1, text), TaskInput(2, "The minister lost the senate vote.")])
    assert business.result["topic"] == "business" and politics.result["topic"] == "politics"
    assert 0.5 < business.score <= 1 and 0 <= business.margin <= 1
    assert business.result["entities"] == [{"start": 15, "end": 22, "label": "ORG", "text": "Quantix"}]


def test_run_with_the_trained_model_sets_uncertainty(project, manager, trained):
    target = factories.TaskFactory(article__project=project, article__text="The market and the senate.")
    run, _ = services.prelabel_run_start(project=project, actor=manager, labeler="sklearn")
    assert run.model_version == "sklearn-1"
    services.prelabel_run_plan(run_id=run.pk)
    for chunk in run.chunks.all():
        services.prelabel_chunk_process(chunk_id=chunk.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED and run.failed == 0
    target.refresh_from_db()
    prediction = Prediction.objects.get(task=target, model_version="sklearn-1")
    assert target.uncertainty == pytest.approx(prediction.margin)


def test_not_enough_data_is_a_clear_error(project, manager):
    annotate(project, BUSINESS, "business")
    with pytest.raises(LabelerConfigError, match="Not enough"):
        training.model_train(project=project, actor=manager)


def test_sklearn_run_without_a_model_is_refused(client_for, project, manager):
    response = client_for(manager).post(
        f"/api/v1/projects/{project.pk}/prelabel-runs/", {"labeler": "sklearn"}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_model"


def test_a_swapped_model_file_is_never_loaded(project, trained, settings, monkeypatch):
    path = settings.MEDIA_ROOT / trained.path
    path.write_bytes(path.read_bytes() + b"tampered")
    loaded = []
    monkeypatch.setattr(sklearn_model.joblib, "load", lambda *a, **k: loaded.append(a))
    with pytest.raises(LabelerUnavailable, match="checksum"):
        build_labeler("sklearn", config={}, context=LabelerContext(project.pk, project.label_schema, "sklearn-1"))
    assert loaded == []


def test_a_path_outside_our_folder_is_refused(project, trained, settings, tmp_path):
    outside = tmp_path.parent / "evil.joblib"
    outside.write_bytes(b"x")
    TrainedModel.objects.filter(pk=trained.pk).update(path="../evil.joblib", sha256=sklearn_model.sha256_of(outside))
    with pytest.raises(LabelerUnavailable, match="Refusing"):
        build_labeler("sklearn", config={}, context=LabelerContext(project.pk, project.label_schema, "sklearn-1"))


def test_config_cannot_name_a_file(project):
    with pytest.raises(LabelerConfigError):
        sklearn_model.SklearnLabeler.validate_config({"path": "/tmp/x.joblib"}, project.label_schema)


def test_train_endpoint_queues_a_job(client_for, project, manager, annotator, django_capture_on_commit_callbacks):
    url = f"/api/v1/projects/{project.pk}/prelabel-models/"
    assert client_for(annotator).post(url).status_code == 403
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(manager).post(url)
    assert response.status_code == 202 and response.json() == {"queued": True} and len(callbacks) == 1


def test_retrains_every_n_submissions_with_debounce(
    project, prelabel_admin, monkeypatch, django_capture_on_commit_callbacks
):
    labeler = services.labeler_save(
        project=project, actor=prelabel_admin, name="model", kind="sklearn", config={"retrain_every": 3}
    )
    queued = []
    monkeypatch.setattr(training.jobs.model_train_job, "apply_async", lambda args, queue=None: queued.append(args))
    for i in range(2):
        annotate(project, BUSINESS + str(i), "business")
    with django_capture_on_commit_callbacks(execute=True):
        training.retrain_on_submissions("annotation.submitted", project.pk, {"first": True})
    assert queued == []
    annotate(project, POLITICS, "politics")
    with django_capture_on_commit_callbacks(execute=True):
        training.retrain_on_submissions("annotation.submitted", project.pk, {"first": True})
        training.retrain_on_submissions("annotation.submitted", project.pk, {"first": True})
    assert queued == [[project.pk, None, labeler.pk]]  # the second event found a job already queued
    assert Labeler.objects.get(pk=labeler.pk).training_queued_at is not None
    training.jobs.model_train_job(project.pk, None, labeler.pk)
    assert Labeler.objects.get(pk=labeler.pk).training_queued_at is None
    assert TrainedModel.objects.get(project=project).annotation_count == 3


def test_submissions_are_counted_in_the_cache_not_in_the_database(project, prelabel_admin, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    services.labeler_save(project=project, actor=prelabel_admin, name="m", kind="sklearn", config={"retrain_every": 5})
    queued = []
    monkeypatch.setattr(training, "model_train_request", lambda **kwargs: queued.append(kwargs) or True)
    counts = []
    for i in range(12):
        annotate(project, BUSINESS + str(i), "business")
        with CaptureQueriesContext(connection) as queries:
            training.retrain_on_submissions("annotation.submitted", project.pk, {"first": True})
        counts.append(sum("COUNT(*)" in q["sql"] and "annotations_annotation" in q["sql"] for q in queries))
    # Counted on the first event (nothing in the cache), then at the 5th submission (trigger) and
    # 5 submissions after the trigger (the model has not landed, so it asks again: debounced).
    assert [i + 1 for i, n in enumerate(counts) if n] == [1, 5, 10]
    assert len(queued) == 2


def test_annotations_added_without_events_are_caught_at_the_resync(project, prelabel_admin, monkeypatch):
    from django.core.cache import cache

    services.labeler_save(project=project, actor=prelabel_admin, name="m", kind="sklearn", config={"retrain_every": 4})
    queued = []
    monkeypatch.setattr(training, "model_train_request", lambda **kwargs: queued.append(kwargs) or True)
    annotate(project, BUSINESS, "business")
    training.retrain_on_submissions("annotation.submitted", project.pk, {"first": True})  # 1 behind
    for i in range(3):  # imported: no submission events
        annotate(project, POLITICS + str(i), "politics")
    training.retrain_on_submissions("annotation.submitted", project.pk, {"first": True})  # counter: 2
    assert queued == []
    cache.delete(training._retrain_pending_key(project.pk))  # RETRAIN_RESYNC_SECONDS have passed
    training.retrain_on_submissions("annotation.submitted", project.pk, {"first": True})
    assert len(queued) == 1  # the database has 4 since the (absent) last model


def test_retraining_checks_the_database_while_the_cache_is_down(project, prelabel_admin, monkeypatch, cache_down):
    services.labeler_save(project=project, actor=prelabel_admin, name="m", kind="sklearn", config={"retrain_every": 2})
    queued = []
    monkeypatch.setattr(training, "model_train_request", lambda **kwargs: queued.append(kwargs) or True)
    monkeypatch.setattr(training, "cache", cache_down)
    annotate(project, BUSINESS, "business")
    training.retrain_on_submissions("annotation.submitted", project.pk, {"first": True})
    annotate(project, POLITICS, "politics")
    training.retrain_on_submissions("annotation.submitted", project.pk, {"first": True})
    assert len(queued) == 1


def test_the_handler_is_subscribed_in_ready():
    assert training.retrain_on_submissions in events._handlers


def test_training_reads_the_task_segment(project, manager):
    # Spans are offsets into the task text (a segment), and so is training.
    for i in range(3):
        article = factories.ArticleFactory(project=project, text=f"Intro {i}. {BUSINESS}")
        start = article.text.index("Helios")
        task = factories.TaskFactory(article=article, start_offset=start, end_offset=len(article.text))
        factories.AnnotationFactory(
            task=task,
            project=project,
            result={"topic": "business", "entities": [{"start": 0, "end": 11, "label": "ORG", "text": "Helios Bank"}]},
        )
        annotate(project, POLITICS, "politics")
    model = training.model_train(project=project, actor=manager)
    assert model.info["fields"]["entities"] == {"entries": 1}
    assert Annotation.objects.count() == 6
