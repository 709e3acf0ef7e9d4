"""A small project with every field type, overlapping annotations, gold tasks and predictions.

``build_world()`` is also used by the browser test of the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from projects.core.models import Role
from tests import factories

FULL_SCHEMA = {
    "fields": [
        {"name": "topic", "type": "choice", "options": ["politics", "business", "technology"]},
        {"name": "entities", "type": "spans", "labels": ["PERSON", "ORG"]},
        {"name": "answer", "type": "text"},
        {"name": "quality", "type": "rating", "criteria": ["relevance"], "scale": [1, 5]},
        {"name": "better", "type": "pairwise", "between": ["payload.a", "payload.b"]},
    ]
}

DAY1 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def result(topic, spans=(), answer="same text", relevance=3, better="a"):
    return {
        "topic": topic,
        "entities": [{"start": s, "end": e, "label": lab} for s, e, lab in spans],
        "answer": answer,
        "quality": {"relevance": relevance},
        "better": {"choice": better},
    }


@pytest.fixture
def world(db):
    return build_world()


def build_world() -> dict:
    """Three annotators (ann, ben, cy) on 4 tasks with overlap 3, plus 2 gold tasks.

    ann is an expert in "medicine", ben a generalist, cy has no skill. On the gold tasks (both
    need "medicine") ann and ben are right and cy is wrong on 4 fields of 5 (text matches).
    Lead times: ann 10 s, ben 20 s, cy 30 s on the 4 ordinary tasks (0 on gold).
    """
    project = factories.ProjectFactory(label_schema=FULL_SCHEMA, overlap=3)
    users = {}
    for name, level in (("ann", "expert"), ("ben", "generalist"), ("cy", "none")):
        user = factories.UserFactory(username=name)
        factories.MembershipFactory(project=project, user=user, role=Role.ANNOTATOR)
        factories.ProfileFactory(user=user, skills={"medicine": level} if level != "none" else {})
        users[name] = user
    tasks = [factories.TaskFactory(article__project=project) for _ in range(4)]
    answers = [
        ("politics", "politics", "politics"),
        ("business", "business", "technology"),
        ("technology", "business", "politics"),
        ("politics", "politics", "business"),
    ]
    # Pre-labels: ann kept the model's "politics" on task 0; ben changed "technology" on task 1.
    predictions = {
        (0, "ann"): factories.PredictionFactory(task=tasks[0], model_version="rules-v1", result={"topic": "politics"}),
        (1, "ben"): factories.PredictionFactory(
            task=tasks[1], model_version="rules-v1", result={"topic": "technology"}
        ),
    }
    for i, (task, labels) in enumerate(zip(tasks, answers, strict=True)):
        for j, (name, label) in enumerate(zip(("ann", "ben", "cy"), labels, strict=True)):
            factories.AnnotationFactory(
                task=task,
                user=users[name],
                result=result(label, spans=[(0, 5, "PERSON")], relevance=3 + (j == 2 and i == 0)),
                lead_time=10.0 * (j + 1),
                submitted_at=DAY1 + timedelta(days=i // 2, minutes=j),
                prediction=predictions.get((i, name)),
            )
    gold_answer = result("business", spans=[(0, 5, "PERSON")], relevance=4, better="b")
    gold = [
        factories.TaskFactory(
            article__project=project, is_gold=True, gold_answer=gold_answer, required_skill="medicine"
        )
        for _ in range(2)
    ]
    for task in gold:
        for name in ("ann", "ben"):
            factories.AnnotationFactory(task=task, user=users[name], result=gold_answer, submitted_at=DAY1)
        factories.AnnotationFactory(
            task=task, user=users["cy"], result=result("politics", better="a"), submitted_at=DAY1
        )
    return {"project": project, "users": users, "tasks": tasks, "gold": gold}
