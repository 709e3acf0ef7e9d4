"""The stdlib client against a live server, and the ``manage.py export`` command."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest
from django.core.management import CommandError, call_command

from projects.core.services import token_create
from projects.exports.client import AnnotatorClient, ApiError
from projects.exports.models import ExportJob


@pytest.mark.django_db(transaction=True)
def test_client_streams_resumes_and_checks_snapshots(live_server, dataset, manager, annotator, tmp_path):
    _, key = token_create(user=manager)
    api = AnnotatorClient(live_server.url, token=key)
    pk = dataset.project.pk
    out = tmp_path / "data.jsonl"
    api.export_to_file(pk, str(out), format="jsonl")
    assert out.read_bytes() == dataset.expected("native.jsonl")
    assert [row["task_id"] for row in api.iter_jsonl(pk)] == [dataset.t1.pk, dataset.t2.pk]
    assert [row["task_id"] for row in api.iter_jsonl(pk, after=dataset.t1.pk)] == [dataset.t2.pk]
    job = api.snapshot(pk, format="csv", wait=True)  # eager without a broker: done at once
    assert job["status"] == "done"
    sha = api.download_snapshot(pk, job["id"], str(tmp_path / "snap.csv"))
    assert sha == ExportJob.objects.get(pk=job["id"]).sha256
    assert (tmp_path / "snap.csv").read_bytes() == dataset.expected("consolidated.csv")
    _, key = token_create(user=annotator)
    with pytest.raises(ApiError) as refused:
        list(AnnotatorClient(live_server.url, token=key).iter_export(pk))
    assert refused.value.status == 403
    with pytest.raises(ApiError, match="min_agreement"):
        list(api.iter_export(pk, min_agreement="x"))


@pytest.mark.django_db
def test_export_command_writes_a_file(dataset, tmp_path):
    out = tmp_path / "out.csv"
    call_command("export", dataset.project.pk, "--format", "csv", "--out", str(out), "--filter", "gold=exclude")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [int(r["task_id"]) for r in rows] == [dataset.t1.pk]
    gz = tmp_path / "out.jsonl.gz"
    call_command("export", dataset.project.pk, "--out", str(gz), "--gzip")
    assert gzip.decompress(gz.read_bytes()) == dataset.expected("native.jsonl")


@pytest.mark.django_db
def test_export_command_snapshot_and_errors(dataset, capsys):
    call_command("export", dataset.project.pk, "--snapshot", "--format", "hf")
    job = ExportJob.objects.get()
    assert job.status == "done" and job.card_file
    with pytest.raises(CommandError, match="min_agreement"):
        call_command("export", dataset.project.pk, "--filter", "min_agreement=lots")
    with pytest.raises(CommandError, match="No project"):
        call_command("export", 987654321)
    assert json.loads(dataset.expected("hf.jsonl").splitlines()[0])["task_id"] == dataset.t1.pk
