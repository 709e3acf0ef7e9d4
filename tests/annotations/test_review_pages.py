"""Review and adjudication pages: roles, verdicts through the forms, escaping of user text."""

import re

import pytest
from django.test import Client

from projects.annotations.models import Annotation, Review, ReviewState, TaskLabel
from projects.web.views.review import highlight_spans
from tests import factories

pytestmark = pytest.mark.django_db

EVIL = '<script>alert("x")</script>'


@pytest.fixture
def pending(project, annotator):
    task = factories.TaskFactory(article__project=project, article__title=EVIL)
    return factories.AnnotationFactory(
        task=task,
        user=annotator,
        result={
            "topic": "business",
            "entities": [{"start": 0, "end": 15, "label": "PERSON", "text": "Elena Marchetti"}],
        },
        review_state=ReviewState.PENDING,
    )


def test_highlight_escapes_every_segment():
    html = str(highlight_spans("<b>Bob</b> & co", [{"start": 3, "end": 6, "label": '<i>"L"</i>'}], ["x"]))
    assert "<b>" not in html and "&lt;b&gt;" in html and "&amp; co" in html
    assert '<mark class="span span-c1" title="&lt;i&gt;&quot;L&quot;&lt;/i&gt;">Bob</mark>' in html


def test_review_page_redirects_to_the_next_annotation(client, project, reviewer, pending):
    client.force_login(reviewer)
    response = client.get(f"/projects/{project.pk}/review/")
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{project.pk}/review/{pending.pk}/"
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert '<mark class="span span-c0" title="PERSON">Elena Marchetti</mark>' in html
    assert EVIL not in html and "&lt;script&gt;" in html
    assert 'id="accept-form"' in html and "review.js" in html


def test_accept_reject_and_fix_through_the_forms(client, project, reviewer, pending):
    client.force_login(reviewer)
    url = f"/projects/{project.pk}/review/{pending.pk}/"
    bad = client.post(url, {"verdict": "fix", "corrected_result": '{"topic": "cats"}'})
    assert bad.status_code == 400 and "must be one of" in bad.content.decode()
    assert '{"topic": "cats"}' in bad.content.decode().replace("&quot;", '"')  # the input is kept
    not_json = client.post(url, {"verdict": "fix", "corrected_result": "{oops"})
    assert not_json.status_code == 400 and "not valid JSON" in not_json.content.decode()
    assert client.post(url, {"verdict": "reject", "comment": ""}).status_code == 400
    assert not Review.objects.exists()
    fixed = client.post(url, {"verdict": "fix", "corrected_result": '{"topic": "technology"}', "comment": "topic"})
    assert fixed.status_code == 302 and fixed["Location"] == f"/projects/{project.pk}/review/"
    pending.refresh_from_db()
    assert pending.review_state == ReviewState.FIXED and pending.reviewed_result == {"topic": "technology"}


def test_rejected_work_is_listed_for_its_annotator_with_the_comment_escaped(
    client, project, reviewer, annotator, pending
):
    client.force_login(reviewer)
    client.post(f"/projects/{project.pk}/review/{pending.pk}/", {"verdict": "reject", "comment": EVIL})
    assert Annotation.objects.get(pk=pending.pk).review_state == ReviewState.REJECTED
    history = client.get(f"/projects/{project.pk}/review/{pending.pk}/").content.decode()
    assert EVIL not in history and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in history
    client.force_login(annotator)
    page = client.get(f"/projects/{project.pk}/returned/")
    assert page.status_code == 200
    html = page.content.decode()
    assert EVIL not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_own_annotation_page_has_no_verdict_forms(client, project, reviewer):
    own = factories.AnnotationFactory(task__article__project=project, user=reviewer, review_state=ReviewState.PENDING)
    client.force_login(reviewer)
    html = client.get(f"/projects/{project.pk}/review/{own.pk}/").content.decode()
    assert "accept-form" not in html and "your own annotation" in html
    assert client.post(f"/projects/{project.pk}/review/{own.pk}/", {"verdict": "accept"}).status_code == 400
    assert client.get(f"/projects/{project.pk}/review/").status_code == 200  # nothing else to review


def test_page_roles(client, project, annotator, outsider, pending):
    urls = [
        f"/projects/{project.pk}/review/",
        f"/projects/{project.pk}/review/{pending.pk}/",
        f"/projects/{project.pk}/adjudicate/",
        f"/projects/{project.pk}/adjudicate/{pending.task_id}/",
    ]
    client.force_login(annotator)
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert client.post(urls[1], {"verdict": "accept"}).status_code == 403
    assert client.get(f"/projects/{project.pk}/returned/").status_code == 200
    client.force_login(outsider)
    for url in [*urls, f"/projects/{project.pk}/returned/"]:
        assert client.get(url).status_code == 404, url
    assert client.post(urls[1], {"verdict": "accept"}).status_code == 404
    client.logout()
    assert client.get(urls[0]).status_code == 302
    assert not Review.objects.exists()


def test_annotation_of_another_project_is_404(client, project, reviewer):
    elsewhere = factories.AnnotationFactory(review_state=ReviewState.PENDING)
    client.force_login(reviewer)
    assert client.get(f"/projects/{project.pk}/review/{elsewhere.pk}/").status_code == 404


def test_verdict_form_needs_csrf(project, reviewer, pending):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    assert client.post(f"/projects/{project.pk}/review/{pending.pk}/", {"verdict": "accept"}).status_code == 403
    html = client.get(f"/projects/{project.pk}/review/{pending.pk}/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    ok = client.post(
        f"/projects/{project.pk}/review/{pending.pk}/", {"verdict": "accept", "csrfmiddlewaretoken": token}
    )
    assert ok.status_code == 302


@pytest.fixture
def disagreement(project):
    task = factories.TaskFactory(article__project=project)
    one = factories.AnnotationFactory(task=task, result={"topic": "business"}, user__username="ann1")
    two = factories.AnnotationFactory(
        task=task,
        result={"topic": "politics", "entities": [{"start": 0, "end": 5, "label": "PERSON", "text": "Elena"}]},
        user__username="ann2",
    )
    return task, one, two


def test_adjudication_pages_pick_and_merge(client, project, reviewer, disagreement):
    task, one, two = disagreement
    client.force_login(reviewer)
    listing = client.get(f"/projects/{project.pk}/adjudicate/").content.decode()
    assert f"/projects/{project.pk}/adjudicate/{task.pk}/" in listing and "entities, topic" in listing
    page = client.get(f"/projects/{project.pk}/adjudicate/{task.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and f'data-annotation="{one.pk}"' in html and f'data-annotation="{two.pk}"' in html
    assert html.count("result-field differs") == 4  # two fields differ, in two columns
    response = client.post(f"/projects/{project.pk}/adjudicate/{task.pk}/", {"pick": two.pk})
    assert response.status_code == 302
    assert TaskLabel.objects.get(task=task).annotation == two
    bad = client.post(f"/projects/{project.pk}/adjudicate/{task.pk}/", {"result": '{"topic": "cats"}'})
    assert bad.status_code == 400 and TaskLabel.objects.get(task=task).annotation == two
    merged = client.post(f"/projects/{project.pk}/adjudicate/{task.pk}/", {"result": '{"topic": "technology"}'})
    assert merged.status_code == 302
    label = TaskLabel.objects.get(task=task)
    assert label.result == {"topic": "technology"} and label.source == "merge"


def test_adjudication_page_escapes_labels_and_text(client, project, reviewer):
    project.label_schema = {
        "fields": [{"name": "entities", "type": "spans", "labels": ["PER"]}, {"name": "note", "type": "text"}]
    }
    project.save()
    task = factories.TaskFactory(article__project=project, article__text=f"{EVIL} tail")
    factories.AnnotationFactory(task=task, result={"note": EVIL})
    factories.AnnotationFactory(
        task=task, result={"note": "fine", "entities": [{"start": 0, "end": 8, "label": "PER", "text": EVIL[:8]}]}
    )
    client.force_login(reviewer)
    html = client.get(f"/projects/{project.pk}/adjudicate/{task.pk}/").content.decode()
    assert EVIL not in html and "<script>" not in html.split("</header>")[1].split("<script src=")[0]
