"""Helpers for import tests: post a file or a JSON batch and run the job in-process."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

SPAN_SCHEMA = {
    "fields": [
        {"name": "topic", "type": "choice", "options": ["politics", "business", "technology"]},
        {"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]},
        {"name": "answer", "type": "text"},
        {"name": "quality", "type": "rating", "criteria": ["relevance", "coherence"], "scale": [1, 5]},
    ]
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


class Posted:
    """The POST response; ``json()`` is the job as it stands after the on-commit job ran."""

    def __init__(self, response, client, project) -> None:
        self.response = response
        self.status_code = response.status_code
        self.content = response.content
        self._body = response.json()
        if response.status_code == 202:
            self._body = client.get(f"/api/v1/projects/{project.pk}/imports/{self._body['id']}/").json()

    def json(self) -> dict:
        return self._body


@pytest.fixture
def upload(client_for, manager, project, django_capture_on_commit_callbacks):
    """``upload(name, content, **fields)`` posts a multipart import as the manager and runs it."""

    def post(name: str, content: bytes | str, *, user=None, **fields):
        if isinstance(content, str):
            content = content.encode()
        client = client_for(user or manager)
        data = {"file": SimpleUploadedFile(name, content), **fields}
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/api/v1/projects/{project.pk}/imports/", data, format="multipart")
        return Posted(response, client, project)

    return post


@pytest.fixture
def post_json(client_for, manager, project, django_capture_on_commit_callbacks):
    def post(body: dict, *, user=None):
        client = client_for(user or manager)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/api/v1/projects/{project.pk}/imports/", body, format="json")
        return Posted(response, client, project)

    return post
