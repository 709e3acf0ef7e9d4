"""Label Studio and doccano files, as those tools write them."""

import json

import pytest

from projects.annotations.models import Annotation
from projects.assignment.models import Assignment, Task
from projects.documents.models import Article
from projects.prelabel.models import Prediction
from tests.imports.conftest import SPAN_SCHEMA

pytestmark = pytest.mark.django_db

TEXT = "Chen Wei joined Quantix in Lyon."

# A Label Studio export (JSON, "min" keys trimmed), with one annotation and one prediction.
LABEL_STUDIO = [
    {
        "id": 101,
        "data": {"text": TEXT, "title": "Hire", "source": "wire"},
        "meta": {"batch": 3},
        "annotations": [
            {
                "id": 1,
                "completed_by": {"id": 7, "email": "rita@example.com"},
                "was_cancelled": False,
                "result": [
                    {
                        "id": "r1",
                        "from_name": "label",
                        "to_name": "text",
                        "type": "labels",
                        "origin": "manual",
                        "value": {"start": 0, "end": 8, "text": "Chen Wei", "labels": ["PERSON"]},
                    },
                    {
                        "id": "r2",
                        "from_name": "label",
                        "to_name": "text",
                        "type": "labels",
                        "value": {"start": 16, "end": 23, "text": "Quantix", "labels": ["ORG"]},
                    },
                    {
                        "id": "r3",
                        "from_name": "topic",
                        "to_name": "text",
                        "type": "choices",
                        "value": {"choices": ["business"]},
                    },
                    {
                        "id": "r4",
                        "from_name": "answer",
                        "to_name": "text",
                        "type": "textarea",
                        "value": {"text": ["A hire."]},
                    },
                    {
                        "id": "r5",
                        "from_name": "relevance",
                        "to_name": "text",
                        "type": "rating",
                        "value": {"rating": 4},
                    },
                    {"id": "r6", "from_name": "rel", "to_name": "text", "type": "relation", "value": {}},
                ],
            },
            {"id": 2, "completed_by": 9, "was_cancelled": True, "result": []},
        ],
        "predictions": [
            {
                "model_version": "ner-v2",
                "score": 0.71,
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "text",
                        "type": "labels",
                        "value": {"start": 27, "end": 31, "text": "Lyon", "labels": ["LOC"]},
                    }
                ],
            }
        ],
    },
    {"id": 102, "data": {"text": "No labels here."}, "annotations": [], "predictions": []},
    {
        "id": 103,
        "data": {"text": "Bad label."},
        "predictions": [
            {
                "result": [
                    {"from_name": "label", "type": "labels", "value": {"start": 0, "end": 3, "labels": ["ANIMAL"]}}
                ]
            }
        ],
    },
]


@pytest.fixture
def span_project(project):
    project.label_schema = SPAN_SCHEMA
    project.save()
    return project


def test_label_studio_tasks_with_annotations_and_predictions(upload, span_project, manager, reviewer):
    body = upload("project-1-at-2025.json", json.dumps(LABEL_STUDIO)).json()
    assert (body["format"], body["rows_created"], body["rows_failed"]) == ("labelstudio", 2, 1), body
    assert "ANIMAL" in body["errors"][0]["message"] and body["errors"][0]["line"] == 3
    article = Article.objects.get(external_id="101")
    assert (article.title, article.source, article.meta) == ("Hire", "wire", {"batch": 3})
    task = Task.objects.get(article=article)
    annotation = Annotation.objects.get(task=task)
    assert annotation.user == reviewer  # completed_by email matched a member
    assert annotation.result == {
        "topic": "business",
        "entities": [
            {"start": 0, "end": 8, "label": "PERSON", "text": "Chen Wei"},
            {"start": 16, "end": 23, "label": "ORG", "text": "Quantix"},
        ],
        "answer": "A hire.",
        "quality": {"relevance": 4},
    }
    assert annotation.status == "submitted" and task.submitted_count == 1
    assert Assignment.objects.get(task=task).status == "submitted"
    prediction = Prediction.objects.get(task=task)
    assert (prediction.model_version, prediction.score) == ("ner-v2", 0.71)
    assert prediction.result == {"entities": [{"start": 27, "end": 31, "label": "LOC", "text": "Lyon"}]}


def test_label_studio_reimport_updates_predictions_and_leaves_annotations(upload, span_project, reviewer):
    upload("ls.json", json.dumps(LABEL_STUDIO[:1]))
    changed = json.loads(json.dumps(LABEL_STUDIO[:1]))
    changed[0]["predictions"][0]["score"] = 0.9
    changed[0]["annotations"][0]["result"] = changed[0]["annotations"][0]["result"][2:3]
    body = upload("ls.json", json.dumps(changed)).json()
    assert (body["rows_created"], body["rows_unchanged"]) == (0, 1)
    assert Prediction.objects.get().score == 0.9
    assert len(Annotation.objects.get().result["entities"]) == 2


def test_label_studio_annotation_by_unknown_user_is_the_importers(upload, span_project, manager):
    rows = json.loads(json.dumps(LABEL_STUDIO[:1]))
    rows[0]["annotations"][0]["completed_by"] = 12345
    upload("ls.json", json.dumps(rows))
    assert Annotation.objects.get().user == manager


DOCCANO_NER = [
    {"id": 1, "text": TEXT, "label": [[0, 8, "PERSON"], [27, 31, "LOC"]], "Comments": []},
    {"id": 2, "text": "Nothing to see.", "label": []},
    {"id": 3, "text": "Short.", "label": [[0, 99, "PERSON"]]},
]


def test_doccano_sequence_labeling_jsonl(upload, span_project, manager):
    body = upload("admin.jsonl", "\n".join(json.dumps(r) for r in DOCCANO_NER)).json()
    assert (body["format"], body["rows_created"], body["rows_failed"]) == ("doccano", 2, 1), body
    assert "past the end" in body["errors"][0]["message"]
    annotation = Annotation.objects.get()
    assert annotation.user == manager
    assert annotation.result == {
        "entities": [
            {"start": 0, "end": 8, "label": "PERSON", "text": "Chen Wei"},
            {"start": 27, "end": 31, "label": "LOC", "text": "Lyon"},
        ]
    }
    assert Article.objects.get(external_id="1").meta == {"Comments": []}


def test_doccano_categories_as_predictions(upload, span_project):
    row = {"text": "Rates rose.", "label": ["business"]}
    body = upload("cats.jsonl", json.dumps(row), labels_as="predictions", model_version="doccano-v1").json()
    assert body["format"] == "doccano" and body["rows_created"] == 1
    prediction = Prediction.objects.get()
    assert (prediction.model_version, prediction.result) == ("doccano-v1", {"topic": "business"})
    assert not Annotation.objects.exists()


def test_labels_with_paragraph_split_are_refused_per_row(upload, span_project):
    body = upload("admin.jsonl", json.dumps(DOCCANO_NER[0]), split="paragraph").json()
    assert body["rows_failed"] == 1 and "one task per article" in body["errors"][0]["message"]


def test_imported_annotations_complete_the_task_at_overlap(upload, span_project):
    span_project.overlap = 1
    span_project.save()
    upload("admin.jsonl", json.dumps(DOCCANO_NER[0]))
    task = Task.objects.get()
    assert task.submitted_count == 1 and task.is_complete
