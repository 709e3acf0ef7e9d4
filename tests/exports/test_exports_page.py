"""The exports page: managers only, builds snapshots, shows them; user text is escaped."""

from __future__ import annotations

import pytest

from projects.exports.models import ExportJob

pytestmark = pytest.mark.django_db


def test_manager_sees_the_page_and_starts_a_snapshot(dataset, client, manager):
    client.force_login(manager)
    url = f"/projects/{dataset.project.pk}/exports/"
    assert client.get(url).status_code == 200
    response = client.post(f"{url}snapshot/", {"format": "csv", "mode": "raw"})
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert (job.format, job.mode) == ("csv", "raw")
    page = client.get(url).content.decode()
    assert f"<td>{job.pk}</td>" in page


def test_bad_snapshot_parameter_is_a_message_not_an_error(dataset, client, manager):
    client.force_login(manager)
    response = client.post(f"/projects/{dataset.project.pk}/exports/snapshot/", {"format": "xml"}, follow=True)
    assert response.status_code == 200
    assert "format" in response.content.decode() and not ExportJob.objects.exists()


def test_annotator_and_outsider_are_refused(dataset, client, annotator, outsider):
    client.force_login(annotator)
    assert client.get(f"/projects/{dataset.project.pk}/exports/").status_code == 403
    client.force_login(outsider)
    assert client.get(f"/projects/{dataset.project.pk}/exports/").status_code == 404
    assert client.post(f"/projects/{dataset.project.pk}/exports/snapshot/", {"format": "csv"}).status_code == 404
