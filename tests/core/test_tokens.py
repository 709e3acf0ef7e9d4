from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from projects.core.models import ApiToken, hash_token
from projects.core.services import token_create
from tests import factories

pytestmark = pytest.mark.django_db


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_apitoken_command_prints_a_working_key(project, annotator):
    out = StringIO()
    call_command("apitoken", annotator.username, stdout=out)
    key = out.getvalue().strip()
    assert len(key) == 40
    token = ApiToken.objects.get(user=annotator)
    assert token.key_hash == hash_token(key) and key not in token.key_hash  # only the hash is stored
    response = token_client(key).get(f"/api/v1/projects/{project.pk}/")
    assert response.status_code == 200


def test_apitoken_command_unknown_user():
    with pytest.raises(CommandError, match="No user"):
        call_command("apitoken", "nobody")


def test_revoked_and_expired_tokens_are_refused(project, annotator):
    token, key = token_create(user=annotator)
    token.revoked_at = timezone.now()
    token.save()
    assert token_client(key).get("/api/v1/projects/").status_code == 401
    _, key2 = token_create(user=annotator, expires_at=timezone.now() - timedelta(seconds=1))
    response = token_client(key2).get("/api/v1/projects/")
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]


def test_wrong_key_is_refused():
    assert token_client("f" * 40).get("/api/v1/projects/").status_code == 401


def test_read_scope_cannot_write(project, manager):
    _, key = token_create(user=manager, scope="read")
    client = token_client(key)
    assert client.get(f"/api/v1/projects/{project.pk}/").status_code == 200
    assert client.patch(f"/api/v1/projects/{project.pk}/", {"name": "x"}, format="json").status_code == 403


def test_token_api_create_list_revoke(client_for):
    user = factories.UserFactory()
    client = client_for(user)
    created = client.post("/api/v1/tokens/", {"name": "ci"}, format="json").json()
    assert len(created["key"]) == 40
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert [t["prefix"] for t in listed] == [created["key"][:8]] and "key" not in listed[0]
    assert client.delete(f"/api/v1/tokens/{created['id']}/").status_code == 204
    assert token_client(created["key"]).get("/api/v1/me/").status_code == 401


def test_cannot_revoke_someone_elses_token(client_for):
    owner, other = factories.UserFactory(), factories.UserFactory()
    token, _ = token_create(user=owner)
    assert client_for(other).delete(f"/api/v1/tokens/{token.pk}/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_profile_page_creates_and_revokes(client):
    user = factories.UserFactory()
    client.force_login(user)
    response = client.post("/profile/tokens/", {"name": "web", "scope": "read"}, follow=True)
    token = ApiToken.objects.get(user=user)
    assert token.scope == "read"
    assert token.prefix in response.content.decode()
    client.post(f"/profile/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_token_expiring_later_works_and_refused_once_past(project, annotator):
    token, key = token_create(user=annotator, expires_at=timezone.now() + timedelta(seconds=30))
    assert token_client(key).get("/api/v1/projects/").status_code == 200
    # Microseconds matter: the statement compares the stored value (text on SQLite) with now.
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now().replace(microsecond=0) - timedelta(seconds=1))
    assert token_client(key).get("/api/v1/projects/").status_code == 401


def test_last_used_is_written_once_per_resolution(project, annotator):
    from projects.core.auth import LAST_USED_RESOLUTION

    token, key = token_create(user=annotator)
    assert token_client(key).get("/api/v1/projects/").status_code == 200
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    assert token_client(key).get("/api/v1/projects/").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first  # within the resolution: no write
    stale = first - LAST_USED_RESOLUTION - timedelta(seconds=1)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    assert token_client(key).post(f"/api/v1/projects/{project.pk}/next-task/").status_code in (200, 404)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first
