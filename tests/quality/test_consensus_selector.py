"""consensus_for_tasks: the selector the export's consolidated mode uses."""

from __future__ import annotations

import pytest

from projects.annotations.models import AnnotationStatus
from projects.core.exceptions import ValidationFailed
from projects.quality.selectors import consensus_for_tasks
from tests import factories

SCHEMA = {
    "fields": [
        {"name": "topic", "type": "choice", "options": ["politics", "business", "technology"]},
        {"name": "tags", "type": "choice", "options": ["x", "y", "z"], "multiple": True},
        {"name": "entities", "type": "spans", "labels": ["PERSON"]},
        {"name": "better", "type": "pairwise", "between": ["payload.a", "payload.b"]},
    ]
}


@pytest.fixture
def setup(db):
    project = factories.ProjectFactory(label_schema=SCHEMA)
    users = [factories.UserFactory(username=f"u{i}") for i in range(3)]
    tasks = [factories.TaskFactory(article__project=project) for _ in range(3)]
    answers = {
        0: ["politics", "politics", "business"],
        1: ["business", "technology", "business"],
        2: ["technology", None, None],
    }
    for t, labels in answers.items():
        for u, label in zip(users, labels, strict=True):
            result = {"topic": label, "tags": ["x", "y"], "better": {"choice": "a"}} if label else {}
            factories.AnnotationFactory(task=tasks[t], user=u, result=result)
    # A draft never counts.
    factories.AnnotationFactory(
        task=tasks[2], user=factories.UserFactory(), result={"topic": "politics"}, status=AnnotationStatus.DRAFT
    )
    return project, tasks


def test_majority_for_first_choice_field_by_default(setup):
    project, tasks = setup
    out = consensus_for_tasks(project)
    assert out == {
        tasks[0].pk: ("politics", pytest.approx(2 / 3)),
        tasks[1].pk: ("business", pytest.approx(2 / 3)),
        tasks[2].pk: ("technology", 1.0),
    }


def test_restricted_to_task_ids(setup):
    project, tasks = setup
    assert set(consensus_for_tasks(project, [tasks[1].pk])) == {tasks[1].pk}
    assert set(consensus_for_tasks(project, [tasks[1].pk], method="dawid_skene")) == {tasks[1].pk}


def test_dawid_skene_agrees_on_clear_cases(setup):
    project, tasks = setup
    out = consensus_for_tasks(project, method="dawid_skene", field="topic")
    assert out[tasks[0].pk].label == "politics"
    assert 0 < out[tasks[0].pk].confidence <= 1


def test_multiple_choice_labels_are_lists_and_pairwise_uses_choice(setup):
    project, tasks = setup
    assert consensus_for_tasks(project, field="tags")[tasks[0].pk] == (["x", "y"], 1.0)
    assert consensus_for_tasks(project, field="better", method="dawid_skene")[tasks[0].pk].label == "a"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"field": "entities"}, "choice or pairwise"), ({"field": "nope"}, "not a field"), ({"method": "vote"}, "method")],
)
def test_bad_arguments_are_validation_errors(setup, kwargs, message):
    project, _ = setup
    with pytest.raises(ValidationFailed, match=message):
        consensus_for_tasks(project, **kwargs)
