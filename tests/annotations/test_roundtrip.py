"""A submitted annotation comes back from the API exactly: offsets, labels, text, for any script."""

import pytest

from projects.annotations.models import Annotation
from projects.core.services import project_update
from tests import factories
from tests.browser.labeling_helpers import EVERY_FIELD_SCHEMA

pytestmark = pytest.mark.django_db

TEXT = "Family 👩\u200d👩\u200d👧 photo by Zoe\u0308 in Paris 🇫🇷.\r\nذهبت سارة إلى القاهرة\r\nשלום עולם, Tel Aviv."
SUBS = [
    ("👩\u200d👩\u200d👧", "ORG"),
    ("Zoe\u0308", "PERSON"),
    ("Paris", "LOC"),
    ("سارة", "PERSON"),
    ("שלום עולם", "ORG"),
]


def _spans():
    return [{"start": TEXT.index(s), "end": TEXT.index(s) + len(s), "label": label, "text": s} for s, label in SUBS]


@pytest.fixture
def setup(client_for, annotator):
    project = factories.ProjectFactory(label_schema=EVERY_FIELD_SCHEMA)
    factories.MembershipFactory(project=project, user=annotator)
    task = factories.TaskFactory(
        article__project=project,
        article__text=TEXT,
        payload={"response": "Résumé 👍\r\nok", "response_a": "أ", "response_b": "ב"},
    )
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    return project, task, client


def test_submitted_result_round_trips_exactly(setup):
    project, task, client = setup
    result = {
        "topic": "technology",
        "tags": ["breaking", "analysis"],
        "entities": sorted(_spans(), key=lambda s: (s["start"], s["end"], s["label"])),
        "answer": "Résumé 👍\r\nfixed — نعم",
        "quality": {"relevance": 5, "coherence": 1, "safety": 3},
        "better": {"choice": "both_bad", "reason": "לא ברור 🤔"},
    }
    created = client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": result}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["result"] == result
    fetched = client.get(f"/api/v1/tasks/{task.pk}/annotations/").json()[0]["result"]
    assert fetched == result
    assert client.get(f"/api/v1/tasks/{task.pk}/").json()["text"] == TEXT
    for span in fetched["entities"]:
        assert TEXT[span["start"] : span["end"]] == span["text"]
    # Re-submitting what the API returned (a re-import) changes nothing.
    again = client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": fetched}, format="json")
    assert again.status_code == 200 and again.json()["result"] == result
    assert Annotation.objects.get(task=task).result == result


def test_utf16_offsets_are_rejected_with_the_field_named(setup):
    project, task, client = setup
    sub = "Paris"
    utf16_start = len(TEXT[: TEXT.index(sub)].encode("utf-16-le")) // 2  # what a naive JS client would send
    bad = {
        "entities": [{"start": utf16_start, "end": utf16_start + 5, "label": "LOC", "text": sub}],
        "topic": "business",
    }
    response = client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": bad}, format="json")
    assert response.status_code == 400
    assert "entities[0]" in response.json()["error"]["fields"]


def test_annotation_records_the_guideline_version_shown(setup, manager):
    project, task, client = setup
    project_update(project=project, actor=manager, guidelines="v2 text")
    url = f"/api/v1/tasks/{task.pk}/annotations/"
    response = client.post(url, {"result": {"topic": "business"}, "guideline_version": 1}, format="json")
    assert response.status_code == 201 and response.json()["guideline_version"] == 1
    bad = client.post(url, {"result": {"topic": "business"}, "guideline_version": 7}, format="json")
    assert bad.status_code == 400 and "guideline_version" in bad.json()["error"]["fields"]
    client.post(url, {"result": {"topic": "business"}}, format="json")
    assert Annotation.objects.get(task=task).guideline_version == 2
