"""A small, fully known project for export tests: two annotated tasks, one reviewed gold task's fix,
and an unannotated task that never appears in exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from projects.annotations.models import Annotation, AnnotationStatus, Review, ReviewState
from projects.core.models import Role
from tests import factories

EXPECTED = Path(__file__).parent / "expected"

SCHEMA = {
    "fields": [
        {"name": "topic", "type": "choice", "options": ["politics", "business", "technology"]},
        {"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]},
        {"name": "answer", "type": "text", "prefill": "payload.response"},
        {"name": "quality", "type": "rating", "criteria": ["relevance", "coherence"], "scale": [1, 5]},
        {"name": "better", "type": "pairwise", "between": ["payload.response_a", "payload.response_b"]},
    ]
}
T1_TEXT = "Elena Marchetti met Quantix in Lyon on Tuesday."
T2_TEXT = "Quantix opened an office in Berlin."


@dataclass
class Dataset:
    project: object
    t1: object
    t2: object
    t3: object
    a1: object
    a2: object
    a3: object

    def expected(self, name: str) -> bytes:
        return (EXPECTED / name).read_bytes()


def _at(day: int) -> datetime:
    return datetime(2026, 3, day, 9, 30, tzinfo=UTC)


@pytest.fixture
def dataset(project, manager, annotator, reviewer) -> Dataset:
    project.label_schema = SCHEMA
    project.name = "News"
    project.save()
    bob = factories.UserFactory(username="bob")
    factories.MembershipFactory(project=project, user=bob, role=Role.ANNOTATOR)
    payload = {
        "prompt": "Who met whom?",
        "response": "Elena met Quantix.",
        "response_a": "Elena met Quantix.",
        "response_b": "Nobody met.",
    }
    # Fixed ids far above any sequence value, so expected files can name them.
    t1 = factories.TaskFactory(
        id=900001,
        article__project=project,
        article__external_id="art-1",
        article__title="Meeting",
        article__text=T1_TEXT,
        payload=payload,
        agreement=0.5,
        required_skill="news",
    )
    t2 = factories.TaskFactory(
        id=900002,
        article__project=project,
        article__external_id="art-2",
        article__title="Office",
        article__text="Intro. " + T2_TEXT,
        start_offset=7,
        end_offset=7 + len(T2_TEXT),
        is_gold=True,
        payload={"response_a": "An office.", "response_b": "A shop."},
        agreement=0.9,
    )
    t3 = factories.TaskFactory(
        id=900003, article__project=project, article__external_id="art-3", article__text="Unlabeled."
    )
    a1 = factories.AnnotationFactory(
        id=910001,
        task=t1,
        user=annotator,
        lead_time=12.5,
        guideline_version=1,
        result={
            "topic": "business",
            "entities": [
                {"start": 20, "end": 27, "label": "ORG", "text": "Quantix"},
                {"start": 0, "end": 15, "label": "PERSON", "text": "Elena Marchetti"},
            ],
            "answer": "Elena Marchetti met Quantix.",
            "quality": {"relevance": 4, "coherence": 5},
            "better": {"choice": "a", "reason": "accurate"},
        },
    )
    a2 = factories.AnnotationFactory(
        id=910002,
        task=t1,
        user=bob,
        lead_time=8.0,
        guideline_version=1,
        result={
            "topic": "business",
            "entities": [{"start": 0, "end": 15, "label": "PERSON", "text": "Elena Marchetti"}],
            "answer": "Elena met Quantix.",
            "quality": {"relevance": 2, "coherence": 3},
            "better": {"choice": "a"},
        },
    )
    a3 = factories.AnnotationFactory(
        id=910003,
        task=t2,
        user=annotator,
        lead_time=5.0,
        guideline_version=1,
        review_state=ReviewState.FIXED,
        result={
            "topic": "business",
            "entities": [{"start": 28, "end": 34, "label": "LOC", "text": "Berlin"}],
            "better": {"choice": "tie"},
        },
    )
    factories.AnnotationFactory(task=t3, user=bob, status=AnnotationStatus.DRAFT, result={})
    Annotation.objects.filter(pk=a1.pk).update(submitted_at=_at(1))
    Annotation.objects.filter(pk=a2.pk).update(submitted_at=_at(2))
    Annotation.objects.filter(pk=a3.pk).update(submitted_at=_at(3))
    corrected = {
        "topic": "technology",
        "entities": [
            {"start": 0, "end": 7, "label": "ORG", "text": "Quantix"},
            {"start": 28, "end": 34, "label": "LOC", "text": "Berlin"},
        ],
        "better": {"choice": "tie"},
    }
    review = Review.objects.create(
        annotation=a3, reviewer=reviewer, verdict="fix", comment="wrong topic", corrected_result=corrected
    )
    Review.objects.filter(pk=review.pk).update(created_at=_at(4))
    Annotation.objects.filter(pk=a3.pk).update(reviewed_result=corrected)
    return Dataset(project, t1, t2, t3, a1, a2, a3)
