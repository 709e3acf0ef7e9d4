import pytest

pytestmark = pytest.mark.django_db


def test_manager_sees_the_import_page_and_recent_jobs(client, project, manager):
    from projects.imports.models import ImportJob

    ImportJob.objects.create(project=project, created_by=manager, format="csv", file_name="<b>news</b>.csv")
    client.force_login(manager)
    response = client.get(f"/projects/{project.pk}/import/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Import articles" in body and "&lt;b&gt;news&lt;/b&gt;.csv" in body and "<b>news</b>" not in body
    assert f"/projects/{project.pk}/import/" in client.get(f"/projects/{project.pk}/").content.decode()


def test_annotator_gets_403_and_outsider_404(client, project, annotator, outsider):
    client.force_login(annotator)
    assert client.get(f"/projects/{project.pk}/import/").status_code == 403
    assert "/import/" not in client.get(f"/projects/{project.pk}/").content.decode()
    client.force_login(outsider)
    assert client.get(f"/projects/{project.pk}/import/").status_code == 404
