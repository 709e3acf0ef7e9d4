"""quality_recompute: stored figures, per-task agreement, consensus rows, idempotency, debouncing."""

from __future__ import annotations

import json
from unittest import mock

import krippendorff
import numpy as np
import pytest
from django.utils import timezone

from projects.annotations.services import annotation_submit
from projects.assignment.models import Task
from projects.prelabel.selectors import prediction_acceptance
from projects.quality import jobs, services
from projects.quality.models import AnnotatorQuality, QualitySettings, QualitySnapshot, TaskConsensus
from tests import factories
from tests.quality.conftest import result


def _figures(world) -> dict:
    assert services.quality_recompute(project_id=world["project"].pk) == "computed"
    return QualitySnapshot.objects.get(project=world["project"]).figures


def _field(figures, name):
    return next(f for f in figures["fields"] if f["name"] == name)


def test_topic_agreement_matches_the_reference_package(world):
    figures = _figures(world)
    topic = _field(figures, "topic")
    # Units (ann, ben, cy): tasks 0-3, then the two gold tasks.
    codes = {"politics": 0, "business": 1, "technology": 2}
    units = [("politics",) * 3, ("business", "business", "technology"), ("technology", "business", "politics")]
    units += [("politics", "politics", "business")] + [("business", "business", "politics")] * 2
    data = np.array([[codes[u[c]] for u in units] for c in range(3)], dtype=float)
    assert topic["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"), abs=1e-4
    )
    assert topic["units"] == 6
    low, high = topic["alpha_ci"]
    assert low <= topic["alpha"] <= high
    assert topic["cohen_pairs"] == 3  # every pair shares 6 tasks (≥ 5)
    assert figures["counts"] == {"tasks_with_annotations": 6, "annotations": 18, "annotators": 3, "gold_answers": 6}


def test_task_agreement_is_filled_with_hand_computed_values(world):
    _figures(world)
    t0, t1 = (Task.objects.get(pk=t.pk) for t in world["tasks"][:2])
    g1 = Task.objects.get(pk=world["gold"][0].pk)
    # Task 0: topic, spans, text, pairwise agree (1.0); ratings 3, 3, 4 on 1-5 → 1 − (2/3)/4 = 5/6.
    assert t0.agreement == pytest.approx((4 + 5 / 6) / 5, abs=1e-6)
    # Task 1: topic business, business, technology → 1/3 of pairs agree; the rest 1.0.
    assert t1.agreement == pytest.approx((1 / 3 + 4) / 5, abs=1e-6)
    # Gold task: topic 1/3; spans (cy marked none) 1/3; text 1; ratings 4, 4, 3 → 5/6; pairwise 1/3.
    assert g1.agreement == pytest.approx((1 / 3 + 1 / 3 + 1 + 5 / 6 + 1 / 3) / 5, abs=1e-6)


def test_gold_accuracy_per_annotator_and_per_skill(world):
    figures = _figures(world)
    gold = figures["gold"]
    by_name = {row["username"]: row for row in gold["per_annotator"]}
    assert by_name["ann"]["accuracy"] == 1.0 and by_name["ben"]["accuracy"] == 1.0
    assert by_name["cy"]["accuracy"] == pytest.approx(0.2)  # only the text field right: 1 of 5
    assert by_name["cy"]["answers"] == 2
    # Wilson interval for 0.4 successes of 2 (partial credit): hand value.
    assert (by_name["cy"]["low"], by_name["cy"]["high"]) == (
        pytest.approx(0.0176, abs=1e-4),
        pytest.approx(0.7769, abs=1e-4),
    )
    skills = {(r["domain"], r["level"]): r["accuracy"] for r in gold["per_skill"]}
    assert skills == {("medicine", "expert"): 1.0, ("medicine", "generalist"): 1.0, ("medicine", "none"): 0.2}
    assert gold["per_field"]["topic"]["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    row = AnnotatorQuality.objects.get(user=world["users"]["cy"])
    assert row.gold_accuracy == pytest.approx(0.2) and row.details["gold_per_field"]["answer"]["accuracy"] == 1.0


def test_progress_throughput_lead_time_and_prelabel_acceptance(world):
    figures = _figures(world)
    assert [
        (p["date"], p["annotations"], p["annotations_total"], p["tasks_completed_total"]) for p in figures["progress"]
    ] == [
        ("2026-11-02", 12, 12, 4),
        ("2026-11-03", 6, 18, 6),
    ]
    assert {r["username"]: r["submitted"] for r in figures["throughput"]} == {"ann": 6, "ben": 6, "cy": 6}
    per_annotator = {r["username"]: r["median"] for r in figures["lead_time"]["per_annotator"]}
    assert per_annotator == {"ann": 10.0, "ben": 20.0, "cy": 30.0}  # median of 4 × 10/20/30 s and 2 × 0 s
    # Pre-label acceptance is the pre-labeling app's definition, stored with the other figures.
    assert figures["prelabel"] == json.loads(json.dumps(prediction_acceptance(world["project"]), default=str))
    assert [(r["model_version"], r["annotations"]) for r in figures["prelabel"]] == [("rules-v1", 2)]


def test_consensus_rows_are_stored_and_ordered_by_confidence(world):
    _figures(world)
    rows = list(TaskConsensus.objects.filter(project=world["project"], field="topic"))
    assert len(rows) == 6
    assert [r.confidence for r in rows] == sorted(r.confidence for r in rows)
    t0 = TaskConsensus.objects.get(task=world["tasks"][0], field="topic")
    assert t0.label == "politics" and t0.votes == 3 and t0.method == "dawid_skene"


def test_majority_method_setting_changes_stored_consensus(world):
    services.quality_settings_update(project=world["project"], actor=None, consensus_method="majority")
    _figures(world)
    row = TaskConsensus.objects.get(task=world["tasks"][1], field="topic")
    assert (row.label, row.confidence, row.method) == ("business", pytest.approx(2 / 3), "majority")


def test_second_run_changes_nothing_and_force_rewrites_only_the_snapshot(world):
    project = world["project"]
    _figures(world)
    stamps = dict(TaskConsensus.objects.values_list("pk", "updated_at"))
    assert services.quality_recompute(project_id=project.pk) == "clean"
    assert QualitySnapshot.objects.filter(project=project).count() == 1
    assert services.quality_recompute(project_id=project.pk, force=True) == "computed"
    assert QualitySnapshot.objects.filter(project=project).count() == 2
    assert dict(TaskConsensus.objects.values_list("pk", "updated_at")) == stamps  # unchanged rows not rewritten
    first, second = QualitySnapshot.objects.filter(project=project).order_by("id")
    assert first.figures == second.figures  # same data, same seed: same figures


def test_a_claimed_project_is_busy(world):
    project = world["project"]
    QualitySettings.objects.create(project=project, running_since=timezone.now())
    assert services.quality_recompute(project_id=project.pk) == "busy"
    assert not QualitySnapshot.objects.exists()
    assert services.quality_recompute(project_id=10**9) == "gone"


def test_a_new_submission_marks_the_project_stale_and_a_recompute_picks_it_up(
    world, django_capture_on_commit_callbacks
):
    project = world["project"]
    _figures(world)
    assert services.projects_needing_recompute() == []
    newcomer = factories.UserFactory(username="dee")
    task = factories.TaskFactory(article__project=project)
    with django_capture_on_commit_callbacks(execute=True):
        annotation_submit(task=task, user=newcomer, result={"topic": "politics"})
    assert services.projects_needing_recompute() == [project.pk]
    assert jobs.quality_recompute_job(project.pk) == "computed"
    assert QualitySnapshot.objects.filter(project=project).latest().figures["counts"]["annotations"] == 19
    assert services.projects_needing_recompute() == []


def test_event_enqueues_one_delayed_recompute_for_many_submissions(world, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.QUALITY_RECOMPUTE_DELAY = 45
    project = world["project"]
    with mock.patch.object(jobs.quality_recompute_job, "apply_async") as apply_async:
        for i in range(3):
            task = factories.TaskFactory(article__project=project)
            with django_capture_on_commit_callbacks(execute=True):
                annotation_submit(task=task, user=factories.UserFactory(username=f"e{i}"), result={"topic": "business"})
    apply_async.assert_called_once_with((project.pk,), countdown=45)
    assert QualitySettings.objects.get(project=project).scheduled_at is not None


def test_eager_mode_only_marks_dirty(world, django_capture_on_commit_callbacks):
    project = world["project"]
    with mock.patch.object(jobs.quality_recompute_job, "apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=True):
            annotation_submit(
                task=factories.TaskFactory(article__project=project), user=factories.UserFactory(), result={}
            )
    apply_async.assert_not_called()
    assert QualitySettings.objects.get(project=project).dirty_at is not None


def test_sweep_enqueues_stale_projects(world):
    project = world["project"]
    QualitySettings.objects.create(project=project, dirty_at=timezone.now())
    with mock.patch.object(jobs.quality_recompute_job, "delay") as delay:
        assert jobs.quality_sweep_job() == 1
    delay.assert_called_once_with(project.pk)


def test_old_snapshots_are_pruned(world):
    for _ in range(services.KEEP_SNAPSHOTS + 3):
        services.quality_recompute(project_id=world["project"].pk, force=True)
    assert QualitySnapshot.objects.filter(project=world["project"]).count() == services.KEEP_SNAPSHOTS


def test_empty_project_recomputes_to_empty_figures(db):
    project = factories.ProjectFactory()
    assert services.quality_recompute(project_id=project.pk) == "computed"
    figures = QualitySnapshot.objects.get(project=project).figures
    assert figures["counts"]["annotations"] == 0
    assert all(f["value"] is None for f in figures["fields"])
    assert figures["gold"]["accuracy"] is None and figures["progress"] == []


def test_single_annotator_project_has_no_agreement_but_gold_works(db):
    project = factories.ProjectFactory()
    user = factories.UserFactory()
    for label in ("politics", "business"):
        task = factories.TaskFactory(article__project=project, is_gold=True, gold_answer={"topic": "politics"})
        factories.AnnotationFactory(task=task, user=user, result={"topic": label})
    services.quality_recompute(project_id=project.pk)
    figures = QualitySnapshot.objects.get(project=project).figures
    topic = _field(figures, "topic")
    assert topic["alpha"] is None and topic["fleiss_kappa"] is None and topic["cohen_kappa_mean"] is None
    assert figures["gold"]["accuracy"] == 0.5
    assert set(Task.objects.filter(project=project).values_list("agreement", flat=True)) == {None}


def test_result_helper_shape():
    assert result("politics")["better"] == {"choice": "a"}
