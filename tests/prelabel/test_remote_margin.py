"""Remote predictions carry a margin, so the uncertainty queue orders them too (local fake servers)."""

import math

import pytest

from projects.assignment.models import Task
from projects.core.models import Role
from projects.prelabel import services
from projects.prelabel.labelers.remote import logprob_confidence, margin_from_probabilities, margin_from_score
from projects.prelabel.models import Prediction, RunStatus
from tests import factories
from tests.prelabel.test_remote import configure, run_all

pytestmark = pytest.mark.django_db

# Task text (by its first word) → what the fake model says; see tests/prelabel/conftest.py TEXTS.
CONFIDENCE = {"Elena": 0.95, "Helios": 0.6, "The": 0.99, "Quantix": 0.75}


def _first_word(text: str) -> str:
    return text.split()[0]


def ls_scored(path, body):
    if path != "/predict":
        return 200, {}
    results = []
    for task in body["tasks"]:
        score = CONFIDENCE[_first_word(task["data"]["text"])]
        item = {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["business"]}}
        results.append({"model_version": "fake-1", "score": score, "result": [item]})
    return 200, {"results": results}


def served_in_order(client_for, project, count):
    """The first task next-task gives each of ``count`` fresh annotators, in turn."""
    served = []
    for i in range(count):
        user = factories.UserFactory(username=f"queue-{i}")
        factories.MembershipFactory(project=project, user=user, role=Role.ANNOTATOR)
        response = client_for(user).post(f"/api/v1/projects/{project.pk}/next-task/")
        assert response.status_code == 200
        served.append(response.json()["id"])
    return served


def test_margin_mappings():
    assert margin_from_score(None) is None
    assert margin_from_score(0.9) == pytest.approx(0.8)
    assert margin_from_score(0.3) == 0.0  # below one half nothing is known: least certain
    assert margin_from_probabilities([0.2, 0.5, 0.3]) == pytest.approx(0.2)
    assert margin_from_probabilities([0.7]) == pytest.approx(0.7)
    assert margin_from_probabilities([0.9, 0.45], multiple=True) == pytest.approx(0.1)


def test_label_studio_score_becomes_the_margin_and_the_queue_serves_least_certain_first(
    client_for, project, prelabel_admin, manager, tasks, fake_server
):
    project.queue_order = "uncertainty"
    project.save()
    configure(project, prelabel_admin, "ls_backend", url=fake_server(ls_scored).url, model_version="fake-1")
    run = run_all(project, manager)
    assert (run.status, run.done, run.failed) == (RunStatus.FINISHED, 4, 0)
    by_word = {_first_word(t.text): t.pk for t in tasks}
    margins = dict(Prediction.objects.values_list("task_id", "margin"))
    for word, score in CONFIDENCE.items():
        assert margins[by_word[word]] == pytest.approx(2 * score - 1)
        assert Task.objects.get(pk=by_word[word]).uncertainty == pytest.approx(2 * score - 1)
    assert served_in_order(client_for, project, 4) == [by_word[w] for w in ("Helios", "Quantix", "Elena", "The")]


def test_label_studio_per_option_scores_give_best_minus_second(project, prelabel_admin, manager, tasks, fake_server):
    def per_option(path, body):
        if path != "/predict":
            return 200, {}
        results = []
        for task in body["tasks"]:
            item = {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["business"]}}
            if _first_word(task["data"]["text"]) == "Helios":
                item["scores"] = {"business": 0.55, "politics": 0.35, "technology": 0.1}
            else:
                item["score"] = 0.7  # one confidence for the chosen option
            # The prediction-level score is ignored when the choice itself says more.
            results.append({"score": 0.99, "result": [item]})
        return 200, {"results": results}

    configure(project, prelabel_admin, "ls_backend", url=fake_server(per_option).url, model_version="fake-1")
    run_all(project, manager)
    margins = {t.pk: Prediction.objects.get(task=t).margin for t in tasks}
    assert margins[tasks[1].pk] == pytest.approx(0.2)
    assert {round(margins[t.pk], 6) for t in tasks if t != tasks[1]} == {0.4}
    assert Prediction.objects.get(task=tasks[1]).score == pytest.approx(0.99)


@pytest.mark.parametrize(
    "scores",
    [{"ALIEN": 0.5}, {"business": "high"}, [], {"business": True}],
)
def test_malformed_option_scores_fail_that_chunk_and_store_nothing(
    project, prelabel_admin, manager, tasks, fake_server, scores
):
    def bad(path, body):
        if path != "/predict":
            return 200, {}
        item = {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["business"]}}
        return 200, {"results": [{"result": [{**item, "scores": scores}]} for _ in body["tasks"]]}

    configure(project, prelabel_admin, "ls_backend", url=fake_server(bad).url, retries=0)
    run = run_all(project, manager)
    assert (run.status, run.done, run.failed) == (RunStatus.FINISHED, 0, 4)
    assert not Prediction.objects.exists()
    assert "scores" in services.selectors.run_errors(run=run)[0]["message"]


def _tokens(*parts):
    """Chat logprobs ``content``: (token, probability, {alternative: probability})."""
    return [
        {
            "token": token,
            "logprob": math.log(p),
            "top_logprobs": [{"token": token, "logprob": math.log(p)}]
            + [{"token": alt, "logprob": math.log(q)} for alt, q in (alternatives or {}).items()],
        }
        for token, p, alternatives in parts
    ]


def chat_with_logprobs(path, body):
    text = body["messages"][-1]["content"].rsplit("Text:\n", 1)[-1]
    p = CONFIDENCE[_first_word(text)]
    content = _tokens(
        ('{"', 0.99, None),
        ("topic", 0.99, None),
        ('":"', 0.99, None),
        ("bus", p, {"pol": 1 - p - 0.01}),
        ("iness", 0.999, None),
        ('"}', 0.99, None),
    )
    message = {"role": "assistant", "content": '{"topic":"business"}'}
    return 200, {"choices": [{"message": message, "logprobs": {"content": content}}]}


def test_openai_logprobs_give_the_margin_at_the_deciding_token(
    client_for, project, prelabel_admin, manager, tasks, fake_server
):
    project.queue_order = "uncertainty"
    project.save()
    server = fake_server(chat_with_logprobs)
    configure(project, prelabel_admin, "openai", url=server.url, model="tiny", logprobs=True)
    run = run_all(project, manager)
    assert (run.done, run.failed) == (4, 0)
    body = server.requests[0][2]
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    by_word = {_first_word(t.text): t.pk for t in tasks}
    for word, p in CONFIDENCE.items():
        prediction = Prediction.objects.get(task_id=by_word[word])
        assert prediction.score == pytest.approx(p)
        assert prediction.margin == pytest.approx(p - (1 - p - 0.01))
    assert served_in_order(client_for, project, 2) == [by_word["Helios"], by_word["Quantix"]]


def test_openai_without_logprobs_stores_no_margin(project, prelabel_admin, manager, tasks, fake_server):
    server = fake_server(chat_with_logprobs)
    configure(project, prelabel_admin, "openai", url=server.url, model="tiny")
    run_all(project, manager)
    assert "logprobs" not in server.requests[0][2]
    assert set(Prediction.objects.values_list("score", "margin")) == {(None, None)}
    assert not Task.objects.filter(uncertainty__isnull=False).exists()


@pytest.mark.parametrize("logprobs", [None, "x", {"content": [{"token": 3}]}, {"content": []}])
def test_unusable_logprobs_mean_no_confidence_not_a_failure(logprobs):
    schema = factories.SIMPLE_SCHEMA
    assert logprob_confidence(schema, {"topic": "business"}, logprobs) == (None, None)


def test_logprobs_without_a_choice_field_give_the_mean_token_probability():
    content = _tokens(('{"entities":[]}', 0.81, None), ("", 0.64, None))
    score, margin = logprob_confidence(factories.SIMPLE_SCHEMA, {"entities": []}, {"content": content})
    assert score == pytest.approx(math.sqrt(0.81 * 0.64))
    assert margin == pytest.approx(2 * score - 1)
