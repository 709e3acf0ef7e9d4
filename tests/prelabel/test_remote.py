import pytest

from projects.core.schema import DEMO_SCHEMA
from projects.prelabel import services
from projects.prelabel.labelers import LabelerConfigError, LabelerContext, LabelerUnavailable, TaskInput, build_labeler
from projects.prelabel.labelers.remote import LabelStudioBackendLabeler, OpenAIChatLabeler, http_json
from projects.prelabel.models import Prediction, PrelabelRun, RunStatus
from tests import factories
from tests.prelabel.fakes import ls_ok

pytestmark = pytest.mark.django_db


def configure(project, admin, kind, **config):
    return services.labeler_save(project=project, actor=admin, name="remote", kind=kind, config=config)


def run_all(project, manager, labeler="remote", chunk_size=2):
    run, _ = services.prelabel_run_start(project=project, actor=manager, labeler=labeler, chunk_size=chunk_size)
    services.prelabel_run_plan(run_id=run.pk)
    for chunk in run.chunks.order_by("index"):
        services.prelabel_chunk_process(chunk_id=chunk.pk)
    run.refresh_from_db()
    return run


def test_label_studio_backend_round_trip(project, prelabel_admin, manager, tasks, fake_server):
    server = fake_server(ls_ok)
    configure(project, prelabel_admin, "ls_backend", url=server.url, batch_size=3, model_version="fake-1")
    run = run_all(project, manager, chunk_size=4)
    assert (run.status, run.done, run.failed) == (RunStatus.FINISHED, 4, 0)
    assert server.paths() == ["/setup", "/predict", "/predict"]
    method, path, body = server.requests[1]
    assert set(body) == {"tasks", "model_version", "project", "label_config", "params"}
    assert body["tasks"][0] == {"id": tasks[0].pk, "data": {"text": tasks[0].text}}
    assert body["label_config"].startswith("<View>") and body["params"] == {"context": None}
    prediction = Prediction.objects.get(task=tasks[0], model_version="fake-1")
    assert prediction.result["topic"] == "business" and prediction.score == 0.9
    assert prediction.result["entities"] == [{"start": 20, "end": 27, "label": "ORG", "text": "Quantix"}]


def test_unreachable_endpoint_fails_every_task_with_a_clear_error(project, prelabel_admin, manager, tasks, local_http):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    configure(project, prelabel_admin, "ls_backend", url=f"http://127.0.0.1:{port}", retries=1, timeout=2)
    run = run_all(project, manager)
    assert (run.status, run.done, run.failed) == (RunStatus.FINISHED, 0, 4)
    assert "setup" in run.message and "unavailable after 2 attempt(s)" in run.message
    errors = services.selectors.run_errors(run=run)
    assert len(errors) == 4 and "cannot connect" in errors[0]["message"]
    assert not Prediction.objects.exists()


def test_malformed_predictions_store_nothing_from_that_chunk_and_the_run_goes_on(
    project, prelabel_admin, manager, tasks, fake_server
):
    def flaky(path, body):
        if path != "/predict":
            return 200, {}
        if any("Helios" in t["data"]["text"] for t in body["tasks"]):
            # second chunk: one item names a label the schema does not have
            status, good = ls_ok(path, body)
            good["results"][0]["result"].append(
                {
                    "from_name": "entities",
                    "to_name": "text",
                    "type": "labels",
                    "value": {"start": 0, "end": 3, "labels": ["ALIEN"]},
                }
            )
            return status, good
        return ls_ok(path, body)

    server = fake_server(flaky)
    configure(project, prelabel_admin, "ls_backend", url=server.url)
    run = run_all(project, manager)
    assert (run.status, run.done, run.failed) == (RunStatus.FINISHED, 2, 2)
    assert set(Prediction.objects.values_list("task_id", flat=True)) == {tasks[2].pk, tasks[3].pk}
    errors = services.selectors.run_errors(run=run)
    assert {e["task_id"] for e in errors} == {tasks[0].pk, tasks[1].pk}
    assert "malformed prediction" in errors[0]["message"]


@pytest.mark.parametrize(
    "answer, message",
    [
        ({"results": "nope"}, "expected"),
        ({"results": []}, "0 results for 2 tasks"),
        ({"results": [{"result": [{"from_name": "ghost", "value": {}}]}] * 2}, "from_name 'ghost'"),
        ({"results": [{"result": [], "score": "high"}]}, "2 tasks"),
        (b"<html>oops</html>", "not JSON"),
    ],
)
def test_malformed_answers_raise_labeler_unavailable(project, tasks, fake_server, answer, message):
    server = fake_server(lambda path, body: (200, answer))
    config = LabelStudioBackendLabeler.validate_config({"url": server.url, "retries": 0}, project.label_schema)
    labeler = build_labeler("ls_backend", config=config, context=LabelerContext(project.pk, project.label_schema, "v"))
    with pytest.raises(LabelerUnavailable) as exc:
        labeler.predict([TaskInput(tasks[0].pk, tasks[0].text), TaskInput(tasks[1].pk, tasks[1].text)])
    assert message in str(exc.value)


def test_5xx_is_retried_then_succeeds(fake_server):
    calls = []

    def sometimes(path, body):
        calls.append(path)
        return (503, {"error": "busy"}) if len(calls) < 3 else (200, {"status": "UP"})

    server = fake_server(sometimes)
    assert http_json("GET", server.url + "/health", retries=2, backoff=0.01) == {"status": "UP"}
    assert len(calls) == 3


def test_retries_are_bounded(fake_server):
    server = fake_server(lambda path, body: (500, {}))
    with pytest.raises(LabelerUnavailable, match="HTTP 500"):
        http_json("GET", server.url + "/health", retries=2, backoff=0.01)
    assert len(server.requests) == 3


def test_4xx_is_not_retried(fake_server):
    server = fake_server(lambda path, body: (401, {"detail": "bad token"}))
    with pytest.raises(LabelerUnavailable, match="HTTP 401"):
        http_json("GET", server.url + "/health", retries=3, backoff=0.01)
    assert len(server.requests) == 1


def test_internal_addresses_are_refused_without_the_allow_list(project, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(LabelerConfigError) as exc:
        LabelStudioBackendLabeler.validate_config({"url": "http://127.0.0.1:9090"}, project.label_schema)
    assert "config.url" in exc.value.fields
    with pytest.raises(LabelerUnavailable, match="internal address"):
        http_json("GET", "http://169.254.169.254/latest/meta-data/")


def test_health_check_endpoint(client_for, project, prelabel_admin, manager, fake_server):
    server = fake_server(ls_ok)
    labeler = configure(project, prelabel_admin, "ls_backend", url=server.url)
    response = client_for(manager).post(f"/api/v1/projects/{project.pk}/labelers/{labeler.pk}/check/")
    assert response.json() == {"ok": True, "detail": {"status": "UP", "model_class": "Fake"}}


def chat(content):
    return lambda path, body: (200, {"choices": [{"message": {"role": "assistant", "content": content}}]})


def test_openai_chat_labels_with_a_prompt_template_and_locates_spans(demo_project, fake_server):
    server = fake_server(chat('```json\n{"topic": "business", "entities": [{"text": "Quantix", "label": "ORG"}]}\n```'))
    config = OpenAIChatLabeler.validate_config(
        {"url": server.url + "/v1", "model": "tiny", "prompt": "Fields:\n$fields\nText: $text", "api_key": "sk-x"},
        DEMO_SCHEMA,
    )
    labeler = build_labeler("openai", config=config, context=LabelerContext(demo_project.pk, DEMO_SCHEMA, "llm"))
    [out] = labeler.predict([TaskInput(7, "Quantix met Quantix.")])
    assert out.result["entities"] == [
        {"start": 0, "end": 7, "label": "ORG", "text": "Quantix"},
        {"start": 12, "end": 19, "label": "ORG", "text": "Quantix"},
    ]
    method, path, body = server.requests[0]
    assert path == "/v1/chat/completions" and body["model"] == "tiny"
    assert "Text: Quantix met Quantix." in body["messages"][-1]["content"]
    assert '- topic: one of ["politics"' in body["messages"][-1]["content"]


def test_openai_unusable_json_is_a_per_task_error(project, prelabel_admin, manager, tasks, fake_server):
    server = fake_server(chat("I think it is about business."))
    configure(project, prelabel_admin, "openai", url=server.url, model="tiny")
    run = run_all(project, manager)
    assert (run.done, run.failed) == (0, 4)
    assert "not usable JSON" in services.selectors.run_errors(run=run)[0]["message"]


def test_openai_prompt_placeholders_are_checked(project):
    with pytest.raises(LabelerConfigError):
        OpenAIChatLabeler.validate_config({"url": "https://example.com/v1", "model": "m", "prompt": "$nope"}, {})


def test_only_admins_configure_labelers_and_secrets_are_masked(
    client_for, project, prelabel_admin, manager, fake_server
):
    server = fake_server(ls_ok)
    body = {"name": "ls", "kind": "ls_backend", "config": {"url": server.url, "api_key": "s3cret"}}
    base = f"/api/v1/projects/{project.pk}/labelers/"
    assert client_for(manager).post(base, body, format="json").status_code == 403
    created = client_for(prelabel_admin).post(base, body, format="json")
    assert created.status_code == 201 and created.json()["config"]["api_key"] == "********"
    assert client_for(manager).get(base).json()["results"][0]["config"]["api_key"] == "********"
    labeler_id = created.json()["id"]
    patched = client_for(prelabel_admin).patch(
        f"{base}{labeler_id}/", {"config": {**created.json()["config"], "timeout": 5}}, format="json"
    )
    assert patched.status_code == 200
    from projects.prelabel.models import Labeler

    assert Labeler.objects.get(pk=labeler_id).config["api_key"] == "s3cret"
    bad = client_for(prelabel_admin).post(base, {"name": "x", "kind": "rules", "config": {}}, format="json")
    assert bad.status_code == 400


def test_configured_labeler_refuses_an_inline_config(client_for, project, prelabel_admin, manager, fake_server):
    configure(project, prelabel_admin, "ls_backend", url=fake_server(ls_ok).url)
    response = client_for(manager).post(
        f"/api/v1/projects/{project.pk}/prelabel-runs/", {"labeler": "remote", "config": {"url": "x"}}, format="json"
    )
    assert response.status_code == 400
    assert not PrelabelRun.objects.exists()


def test_outsider_cannot_see_labelers(client_for, project, outsider):
    assert client_for(outsider).get(f"/api/v1/projects/{project.pk}/labelers/").status_code == 404


def test_factories_still_work_with_margin(project):
    assert factories.PredictionFactory(task__article__project=project).margin is None
