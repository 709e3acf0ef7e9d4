"""Django's messages under ``LazyMessageMiddleware``: built on first use, saved as before."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse
from django.utils.functional import empty

from projects.core.services import token_create


def test_a_message_set_by_a_post_shows_on_the_next_page(client, project, manager):
    client.force_login(manager)
    url = reverse("web-guidelines", args=[project.pk])
    response = client.post(url, {"guidelines": "Label every person."}, follow=True)
    assert response.status_code == 200
    assert [str(m)[: len("Saved as version")] for m in response.context["messages"]] == ["Saved as version"]
    again = client.get(url)
    assert not list(again.context["messages"])  # shown once


def test_api_requests_build_no_message_storage(project, annotator):
    _, key = token_create(user=annotator, name="script")
    response = Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/me/")
    assert response.status_code == 200
    assert response.wsgi_request._messages._wrapped is empty
    assert "messages" not in response.cookies
