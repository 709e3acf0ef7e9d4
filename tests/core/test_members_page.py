"""Members page: managers add, invite, change roles and skills, pause and remove; CSRF enforced."""

import re

import pytest
from django.test import Client

from projects.core.models import AnnotatorProfile, AuditEvent, Membership, Role
from tests import factories

pytestmark = pytest.mark.django_db


def page(project):
    return f"/projects/{project.pk}/members/"


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def test_manager_sees_members(manager_client, project, annotator):
    response = manager_client.get(page(project))
    assert response.status_code == 200
    html = response.content.decode()
    assert annotator.username in html and "csrfmiddlewaretoken" in html


def test_page_roles(client, project, reviewer, annotator, outsider):
    client.force_login(outsider)
    assert client.get(page(project)).status_code == 404
    client.force_login(reviewer)
    assert client.get(page(project)).status_code == 403
    client.force_login(annotator)
    assert client.get(page(project)).status_code == 403
    member = Membership.objects.get(project=project, user=annotator)
    assert client.post(f"{page(project)}{member.pk}/remove/").status_code == 403
    assert Membership.objects.filter(pk=member.pk).exists()
    client.logout()
    assert client.get(page(project)).status_code == 302


def test_add_by_email_with_role(manager_client, project):
    newbie = factories.UserFactory(username="newbie", email="New.Bie@example.com")
    response = manager_client.post(f"{page(project)}add/", {"user": "new.bie@example.com", "role": "reviewer"})
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=newbie).role == Role.REVIEWER


def test_manager_cannot_add_an_admin(manager_client, project):
    factories.UserFactory(username="newbie")
    response = manager_client.post(f"{page(project)}add/", {"user": "newbie", "role": "admin"}, follow=True)
    assert not Membership.objects.filter(project=project, user__username="newbie").exists()
    assert "cannot grant" in response.content.decode()


def test_update_role_skills_languages_and_pause(manager_client, project, annotator):
    member = Membership.objects.get(project=project, user=annotator)
    response = manager_client.post(
        f"{page(project)}{member.pk}/",
        {
            "role": "reviewer",
            "skills": "coding=expert, medicine: generalist",
            "languages": "en, de",
            "queue_paused": "on",
        },
    )
    assert response.status_code == 302
    member.refresh_from_db()
    profile = AnnotatorProfile.objects.get(user=annotator)
    assert member.role == Role.REVIEWER and member.queue_paused
    assert profile.skills == {"coding": "expert", "medicine": "generalist"} and profile.languages == ["en", "de"]
    html = manager_client.get(page(project)).content.decode()
    assert "coding=expert, medicine=generalist" in html


def test_bad_skill_level_changes_nothing(manager_client, project, annotator):
    member = Membership.objects.get(project=project, user=annotator)
    response = manager_client.post(
        f"{page(project)}{member.pk}/", {"role": "reviewer", "skills": "coding=guru", "languages": ""}, follow=True
    )
    member.refresh_from_db()
    assert member.role == Role.ANNOTATOR  # the row is applied all or nothing
    assert "anna: Skills must map domain names to a level." in response.content.decode()


def test_manager_cannot_change_an_admin(manager_client, project, admin_user):
    member = Membership.objects.get(project=project, user=admin_user)
    manager_client.post(f"{page(project)}{member.pk}/", {"role": "admin", "skills": "x=expert", "queue_paused": "on"})
    member.refresh_from_db()
    assert not member.queue_paused
    assert not AnnotatorProfile.objects.filter(user=admin_user, skills__has_key="x").exists()
    manager_client.post(f"{page(project)}{member.pk}/remove/")
    assert Membership.objects.filter(pk=member.pk).exists()


def test_remove_member(manager_client, project, annotator):
    member = Membership.objects.get(project=project, user=annotator)
    assert manager_client.post(f"{page(project)}{member.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert AuditEvent.objects.filter(action="member.remove").exists()


def test_member_of_another_project_is_404(manager_client, project):
    elsewhere = factories.MembershipFactory()
    assert manager_client.post(f"{page(project)}{elsewhere.pk}/remove/").status_code == 404
    assert Membership.objects.filter(pk=elsewhere.pk).exists()


def test_forms_need_the_csrf_token(project, manager, annotator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    member = Membership.objects.get(project=project, user=annotator)
    assert client.post(f"{page(project)}{member.pk}/remove/").status_code == 403
    assert client.post(f"{page(project)}add/", {"user": "anna", "role": "annotator"}).status_code == 403
    assert Membership.objects.filter(pk=member.pk).exists()
    # With the token from the page, the same post works.
    html = client.get(page(project)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    response = client.post(f"{page(project)}{member.pk}/remove/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and not Membership.objects.filter(pk=member.pk).exists()


def test_invite_shows_a_one_time_link_that_sets_a_password(manager_client, project, client_for, manager):
    response = manager_client.post(
        f"{page(project)}invite/", {"username": "ines", "email": "ines@example.com", "role": "annotator"}
    )
    assert response.status_code == 302
    invited = Membership.objects.get(project=project, user__username="ines")
    assert not invited.user.has_usable_password()
    html = manager_client.get(page(project)).content.decode()
    link = re.search(r'<code id="invite-link">https?://[^/]+(/invite/[^<]+)</code>', html).group(1)
    assert "invite-link" not in manager_client.get(page(project)).content.decode()  # shown once
    guest = Client()
    form = guest.get(link, follow=True)
    assert form.status_code == 200 and "ines" in form.content.decode()
    set_url = form.redirect_chain[-1][0] if form.redirect_chain else link
    done = guest.post(set_url, {"new_password1": "a-Long-pass-42!", "new_password2": "a-Long-pass-42!"})
    assert done.status_code == 302
    assert Client().login(username="ines", password="a-Long-pass-42!")
    again = Client().get(link, follow=True)
    assert "not valid" in again.content.decode()


def test_invite_refuses_existing_users_and_bad_input(manager_client, project, annotator):
    manager_client.post(f"{page(project)}invite/", {"username": "anna", "email": "x@example.com", "role": "annotator"})
    manager_client.post(f"{page(project)}invite/", {"username": "bad name!", "email": "nope", "role": "annotator"})
    manager_client.post(f"{page(project)}invite/", {"username": "boss", "email": "boss@example.com", "role": "admin"})
    assert not Membership.objects.filter(project=project, user__username__in=["bad name!", "boss"]).exists()
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username__in=["bad name!", "boss"]).exists()


def test_invite_api(client_for, project, manager, reviewer):
    url = f"/api/v1/projects/{project.pk}/members/invite/"
    body = {"username": "ivan", "email": "ivan@example.com", "role": "reviewer"}
    assert client_for(reviewer).post(url, body, format="json").status_code == 403
    response = client_for(manager).post(url, body, format="json")
    assert response.status_code == 201
    assert "/invite/" in response.json()["invite_url"] and response.json()["role"] == "reviewer"
    assert client_for(manager).post(url, body, format="json").status_code == 409


def test_members_page_escapes_usernames_and_skills(manager_client, project):
    user = factories.UserFactory(username="evil", email="e@example.com")
    factories.MembershipFactory(project=project, user=user)
    AnnotatorProfile.objects.update_or_create(user=user, defaults={"skills": {"<script>x</script>": "expert"}})
    html = manager_client.get(page(project)).content.decode()
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
