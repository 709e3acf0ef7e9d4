"""The streaming export endpoint: permissions, filters, resume, gzip, headers, round trips."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from projects.annotations.models import Annotation
from projects.core.models import TokenScope
from projects.core.services import token_create
from projects.exports import selectors
from projects.exports.filters import parse_options
from projects.exports.formats import FORMAT_NAMES
from tests import factories

pytestmark = pytest.mark.django_db


def url(project, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/projects/{project.pk}/export/" + (f"?{query}" if query else "")


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def lines(response) -> list[dict]:
    return [json.loads(line) for line in body(response).splitlines()]


def test_manager_streams_jsonl_with_attachment_headers(dataset, client_for, manager):
    response = client_for(manager).get(url(dataset.project))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="project-{dataset.project.pk}-jsonl-consolidated.jsonl"'
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert [row["task_id"] for row in lines(response)] == [dataset.t1.pk, dataset.t2.pk]


@pytest.mark.parametrize("role", ["annotator", "reviewer"])
def test_members_below_manager_get_403(dataset, client_for, request, role):
    response = client_for(request.getfixturevalue(role)).get(url(dataset.project))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_outsider_gets_404(dataset, client_for, outsider):
    response = client_for(outsider).get(url(dataset.project))
    assert response.status_code == 404


def test_anonymous_is_refused(dataset):
    assert APIClient().get(url(dataset.project)).status_code in (401, 403)


def test_export_scope_token_of_a_manager_exports_but_an_annotators_does_not(dataset, manager, annotator):
    _, key = token_create(user=manager, scope=TokenScope.EXPORT)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(url(dataset.project, format="csv")).status_code == 200
    assert (
        client.post(f"/api/v1/projects/{dataset.project.pk}/exports/", {"format": "csv"}, format="json").status_code
        == 202
    )
    _, key = token_create(user=annotator, scope=TokenScope.EXPORT)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(url(dataset.project)).status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "xml"}, "format"),
        ({"mode": "both"}, "mode"),
        ({"status": "done"}, "status"),
        ({"min_agreement": "high"}, "min_agreement"),
        ({"min_agreement": "1.5"}, "min_agreement"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45"}, "until"),
        ({"since": "2026-03-05", "until": "2026-03-01"}, "until"),
        ({"gold": "maybe"}, "gold"),
        ({"after": "abc"}, "after"),
        ({"after": "-3"}, "after"),
    ],
)
def test_malformed_filters_get_400_naming_the_parameter(dataset, client_for, manager, params, field):
    response = client_for(manager).get(url(dataset.project, **params))
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"]
    assert field in error["message"]


def test_resume_after_a_task_id(dataset, client_for, manager):
    response = client_for(manager).get(url(dataset.project, after=dataset.t1.pk))
    assert [row["task_id"] for row in lines(response)] == [dataset.t2.pk]


def test_gzip_on_accept_encoding_and_as_a_file(dataset, client_for, manager):
    client = client_for(manager)
    plain = body(client.get(url(dataset.project)))
    response = client.get(url(dataset.project), HTTP_ACCEPT_ENCODING="br, gzip;q=0.8")
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(body(response)) == plain
    response = client.get(url(dataset.project, compress="gzip"))
    assert response["Content-Type"] == "application/gzip"
    assert "Content-Encoding" not in response
    assert response["Content-Disposition"].endswith('.jsonl.gz"')
    assert gzip.decompress(body(response)) == plain


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"gold": "exclude"}, ["t1"]),
        ({"gold": "only"}, ["t2"]),
        ({"status": "accepted"}, ["t2"]),
        ({"status": "reviewed"}, ["t2"]),
        ({"annotator": "bob"}, ["t1"]),
        ({"annotator": "anna,bob"}, ["t1", "t2"]),
        ({"skill": "news"}, ["t1"]),
        ({"min_agreement": "0.8"}, ["t2"]),
        ({"since": "2026-03-02"}, ["t1", "t2"]),
        ({"since": "2026-03-03T00:00:00Z"}, ["t2"]),
        ({"until": "2026-03-01"}, ["t1"]),
        ({"until": "2026-02-28"}, []),
    ],
)
def test_filters_select_tasks(dataset, client_for, manager, params, expected):
    rows = lines(client_for(manager).get(url(dataset.project, **params)))
    assert [row["task_id"] for row in rows] == [getattr(dataset, name).pk for name in expected]


def test_annotator_filter_consolidates_only_their_annotations(dataset, client_for, manager):
    rows = lines(client_for(manager).get(url(dataset.project, annotator="bob")))
    assert [a["annotator"] for a in rows[0]["annotations"]] == ["bob"]
    assert rows[0]["label"]["answer"] == "Elena met Quantix."
    assert rows[0]["label_source"] == "single"


def test_raw_mode_has_one_row_per_annotation(dataset, client_for, manager):
    rows = lines(client_for(manager).get(url(dataset.project, mode="raw")))
    assert [(r["task_id"], r["annotation"]["annotator"]) for r in rows] == [
        (dataset.t1.pk, "anna"),
        (dataset.t1.pk, "bob"),
        (dataset.t2.pk, "anna"),
    ]


def test_csv_round_trip_matches_the_database(dataset, client_for, manager):
    response = client_for(manager).get(url(dataset.project, format="csv", mode="raw"))
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert len(rows) == Annotation.objects.filter(project=dataset.project, status="submitted").count()
    for row in rows:
        annotation = Annotation.objects.get(task_id=int(row["task_id"]), user__username=row["annotator"])
        result = annotation.result
        review = annotation.reviews.last()
        if review is not None and review.verdict == "fix":
            result = review.corrected_result
        assert row["text"] == annotation.task.text
        assert row["topic"] == result["topic"]
        spans = sorted((s["start"], s["end"], s["label"]) for s in result["entities"])
        parsed = [tuple(part.split(":")) for part in row["entities"].split("|")]
        assert [(int(a), int(b), label) for a, b, label in parsed] == spans
        assert row["better"] == result["better"]["choice"]
        if "quality" in result:
            assert int(row["quality.relevance"]) == result["quality"]["relevance"]


def test_label_studio_round_trip_has_their_task_shape(dataset, client_for, manager):
    tasks = json.loads(body(client_for(manager).get(url(dataset.project, format="label-studio"))))
    assert [t["id"] for t in tasks] == [dataset.t1.pk, dataset.t2.pk]
    for task in tasks:
        assert isinstance(task["data"]["text"], str)
        for annotation in task["annotations"]:
            for item in annotation["result"]:
                assert set(item) >= {"from_name", "to_name", "type", "value"}
                assert item["to_name"] == "text"
                if item["type"] == "labels":
                    value = item["value"]
                    assert task["data"]["text"][value["start"] : value["end"]] == value["text"]
    first = {a["id"]: a for a in tasks[0]["annotations"]}
    assert len(first) == 2 and first[dataset.a1.pk]["completed_by"] == {"username": "anna"}


def test_hf_jsonl_loads_with_datasets_when_installed(dataset, client_for, manager, tmp_path):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "data.jsonl"
    path.write_bytes(body(client_for(manager).get(url(dataset.project, format="hf"))))
    ds = datasets.load_dataset("json", data_files=str(path))["train"]
    assert ds["task_id"] == [dataset.t1.pk, dataset.t2.pk]


def test_every_format_streams(dataset, client_for, manager):
    client = client_for(manager)
    for name in FORMAT_NAMES:
        response = client.get(url(dataset.project, format=name))
        assert response.status_code == 200, name
        assert body(response), name


@pytest.mark.parametrize("source", ["orm", "copy"])
def test_queries_per_chunk_do_not_grow_with_rows(project, manager, source):
    if source == "copy" and connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    user = factories.UserFactory(username="zed")
    for _n in range(12):
        task = factories.TaskFactory(article__project=project)
        factories.AnnotationFactory(task=task, user=user, result={"topic": "politics"})
    options = parse_options({}, formats=FORMAT_NAMES)
    with CaptureQueriesContext(connection) as queries:
        rows = list(selectors.export_records(project=project, options=options, chunk_size=5, source=source))
    assert len(rows) == 12
    if source == "orm":
        # 2 existence checks (no reviews here), 3 chunks × (tasks, annotations), the final empty task query
        assert len(queries) == 2 + 3 * 2 + 1
    else:  # 2 existence checks, then per chunk one COPY streams its rows (in a serial plan: 2 settings)
        assert len(queries) == 2 + 3 * 3
        assert [q["sql"][:6] for q in queries[2:5]] == ["SELECT", "COPY (", "SELECT"]
    Annotation.objects.filter(pk=Annotation.objects.first().pk).update(review_state="accepted")
    with CaptureQueriesContext(connection) as queries:
        rows = list(selectors.export_records(project=project, options=options, chunk_size=5, source=source))
    # ... and with a reviewed annotation, reviewed_label_for_tasks' two queries per chunk (COPY: a
    # task id query before each chunk's COPY)
    assert len(rows) == 12 and len(queries) <= 2 + 3 * (4 if source == "orm" else 6) + 1


def test_dawid_skene_consolidation_on_request(dataset, client_for, manager):
    rows = lines(client_for(manager).get(url(dataset.project, consensus="dawid_skene")))
    assert rows[0]["label_source"] == "dawid_skene"
    assert rows[0]["label"]["topic"] == "business" and rows[0]["label"]["better"] == {"choice": "a"}
    assert 0 < rows[0]["confidence"] <= 1
    assert rows[1]["label_source"] == "review"  # a reviewed label always wins
