import pytest

from projects.prelabel.selectors import compare_field, prediction_acceptance
from tests import factories

pytestmark = pytest.mark.django_db

SPANS = [
    {"start": 0, "end": 15, "label": "PERSON", "text": "Elena Marchetti"},
    {"start": 20, "end": 27, "label": "ORG", "text": "Quantix"},
]


def started_from(project, predicted, submitted, version="rules-v1", user=None):
    task = factories.TaskFactory(article__project=project)
    prediction = factories.PredictionFactory(task=task, model_version=version, result=predicted)
    return factories.AnnotationFactory(
        task=task, project=project, result=submitted, prediction=prediction, **({"user": user} if user else {})
    )


def test_acceptance_per_model_version(project):
    started_from(project, {"topic": "business", "entities": SPANS}, {"topic": "business", "entities": SPANS})
    started_from(project, {"topic": "business", "entities": SPANS}, {"topic": "business", "entities": SPANS[:1]})
    started_from(project, {"topic": "business"}, {"topic": "politics"})
    started_from(project, {"topic": "business"}, {"topic": "business", "entities": SPANS[1:]})  # added a field
    started_from(project, {"topic": "politics"}, {"topic": "politics"}, version="sklearn-1")
    factories.AnnotationFactory(task__article__project=project, project=project)  # no prediction: not counted
    stats = {s["model_version"]: s for s in prediction_acceptance(project)}
    rules = stats["rules-v1"]
    assert (rules["annotations"], rules["accepted"], rules["edited"], rules["discarded"]) == (4, 1, 2, 1)
    assert rules["fields"]["topic"] == {"accepted": 3, "edited": 0, "discarded": 1}
    assert rules["fields"]["entities"] == {"accepted": 1, "edited": 1, "discarded": 0}
    assert rules["spans"] == {"predicted": 4, "submitted": 4, "matched": 3, "precision": 0.75, "recall": 0.75}
    assert rules["accepted_rate"] == 0.25
    assert stats["sklearn-1"]["accepted"] == 1 and stats["sklearn-1"]["spans"]["precision"] is None


@pytest.mark.parametrize(
    "field, predicted, submitted, outcome",
    [
        ({"type": "choice", "multiple": True}, ["a", "b"], ["a"], "edited"),
        ({"type": "choice", "multiple": True}, ["a"], ["b"], "discarded"),
        ({"type": "spans"}, SPANS, [], "discarded"),
        ({"type": "rating"}, {"x": 1, "y": 2}, {"x": 1, "y": 3}, "edited"),
        ({"type": "text"}, "draft", "final", "edited"),
        ({"type": "text"}, "same", "same", "accepted"),
    ],
)
def test_compare_field(field, predicted, submitted, outcome):
    assert compare_field(field, predicted, submitted) == outcome


@pytest.mark.parametrize("role, status", [("annotator", 403), ("outsider", 404), ("manager", 200)])
def test_stats_endpoint_permissions(request, client_for, project, role, status):
    started_from(project, {"topic": "business"}, {"topic": "business"})
    response = client_for(request.getfixturevalue(role)).get(f"/api/v1/projects/{project.pk}/prelabel-stats/")
    assert response.status_code == status
    if status == 200:
        assert response.json()[0]["accepted"] == 1
