"""A corpus of hostile strings in every user-controlled field that a page shows, and every page
visited in Chromium: nothing runs (no dialog, the ``window.__xss`` flag the payloads would set
stays unset), no element or attribute comes from user text, and the text reads back literally.

One project is seeded once (through the ORM, so even values the API would refuse are tried, as
defence in depth) and one signed-in admin walks every page: the whole test takes a few seconds.
"""

from __future__ import annotations

from django.utils import timezone

from projects.annotations.models import Comment, Review, ReviewState, TaskLabel
from projects.assignment.models import Assignment, AssignmentStatus
from projects.core.models import ApiToken, AuditEvent, Role
from projects.exports.models import ExportJob, ExportStatus, Webhook
from projects.imports.models import ImportJob, ImportStatus
from projects.prelabel.models import Labeler, PrelabelRun, RunStatus
from tests import factories
from tests.browser.conftest import login, screenshot

# Each payload would set window.__xss (or add an element marked data-xss) if it ever ran.
SCRIPT = "<script>window.__xss=1</script>"
IMG = '"><img src=x onerror="window.__xss=2" data-xss>'
SVG = "<svg onload=window.__xss=3 data-xss>"
JS_URL = "javascript:window.__xss=4"
CLOSE = "</textarea></title></style><b data-xss>5</b>"
TEMPLATE = "{{7*7}} ${7*7} {% now 'Y' %}"
RTL = "\u202egnp.exe\u202c"
ATTR = "' onmouseover='window.__xss=6' data-xss='"
CORPUS = (SCRIPT, IMG, SVG, JS_URL, CLOSE, TEMPLATE, RTL, ATTR)
HOSTILE = " ".join(CORPUS)
SHORT = "<img src=x onerror=window.__xss=7 data-xss>"  # for fields of at most 64 characters
TINY = "<svg/onload=1>"  # 16 characters at most (language codes)

SCHEMA = {
    "fields": [
        {"name": "topic", "type": "choice", "title": SCRIPT, "description": IMG, "options": [IMG, SVG + TEMPLATE]},
        {"name": "entities", "type": "spans", "labels": [SVG, CLOSE]},
        {"name": "answer", "type": "text", "title": ATTR},
        {"name": "quality", "type": "rating", "criteria": [IMG], "scale": [1, 5]},
    ]
}
GUIDELINES = f'# Rules {SCRIPT}\n\n{HOSTILE}\n\n[click]({JS_URL}) <a href="{JS_URL}">raw</a>\n'

# What the page's DOM says about injection: run after every navigation.
INSPECT_JS = """() => {
  const attrs = (e) => [...e.attributes];
  const urlOf = (e) => ['href', 'src', 'action', 'formaction', 'xlink:href'].map((n) => e.getAttribute(n) || '');
  return {
    flag: window.__xss === undefined ? null : window.__xss,
    marked: document.querySelectorAll('[data-xss]').length,
    handlers: [...document.querySelectorAll('*')].flatMap(
      (e) => attrs(e).filter((a) => a.name.startsWith('on')).map((a) => `${e.tagName} ${a.name}`)),
    jsUrls: [...document.querySelectorAll('*')].flatMap(urlOf).filter((u) => /^\\s*javascript:/i.test(u)),
    scripts: [...document.scripts].filter((s) => s.type !== 'application/json' && s.text.includes('__xss')).length,
    svgs: [...document.querySelectorAll('svg')].filter((s) => s.getAttribute('onload') !== null).length,
    text: document.body.innerText,
  };
}"""


def seed():
    """One project with hostile text in every field a page shows. Returns (project, admin, ids)."""
    admin = factories.UserFactory(username="ada", first_name=HOSTILE[:150], last_name=SHORT)
    # Usernames are validated on every path that creates users; these bypass it on purpose.
    annotator = factories.UserFactory(username=f"anna{SHORT}"[:150], first_name=IMG, last_name=SCRIPT)
    other = factories.UserFactory(username=f"bob{SVG}"[:150])
    reviewer = factories.UserFactory(username="rita")
    project = factories.ProjectFactory(
        name=HOSTILE[:200], description=HOSTILE, guidelines=GUIDELINES, label_schema=SCHEMA, overlap=2
    )
    for user, role in (
        (admin, Role.ADMIN),
        (annotator, Role.ANNOTATOR),
        (other, Role.ANNOTATOR),
        (reviewer, Role.REVIEWER),
    ):
        factories.MembershipFactory(project=project, user=user, role=role)
    factories.ProfileFactory(user=annotator, skills={SHORT: "expert", "law": "generalist"}, languages=[TINY])
    factories.ProfileFactory(user=admin, skills={SHORT: "expert"}, languages=[TINY])

    def task(**extra):
        return factories.TaskFactory(
            article__project=project,
            article__title=f"Title {HOSTILE}",
            article__text=f"Text {HOSTILE} end.",
            article__source=HOSTILE[:255],
            article__url=JS_URL,
            article__domain=SHORT,
            article__meta={"note": HOSTILE, SHORT: IMG},
            payload={"response": HOSTILE},
            **extra,
        )

    result = {"topic": IMG, "answer": HOSTILE, "quality": {IMG: 3}, "entities": []}
    # Pending review (review queue), with a comment thread.
    pending_task = task(required_skill=SHORT)
    pending = factories.AnnotationFactory(
        task=pending_task, user=annotator, result=result, review_state=ReviewState.PENDING, submitted_at=timezone.now()
    )
    Assignment.objects.create(
        project=project, task=pending_task, user=annotator, status=AssignmentStatus.SUBMITTED, assigned_by=admin
    )
    Comment.objects.create(task=pending_task, user=annotator, text=f"Comment {HOSTILE}")
    # The admin's own annotation, rejected with a hostile reason (the "returned to you" page).
    returned_task = task()
    returned = factories.AnnotationFactory(
        task=returned_task, user=admin, result=result, review_state=ReviewState.REJECTED, submitted_at=timezone.now()
    )
    Review.objects.create(annotation=returned, reviewer=reviewer, verdict="reject", comment=f"Reason {HOSTILE}")
    # Two annotators disagree (adjudication), one already decided with a hostile comment.
    split = task()
    factories.AnnotationFactory(task=split, user=annotator, result=result, submitted_at=timezone.now())
    factories.AnnotationFactory(
        task=split, user=other, result={**result, "topic": SVG + TEMPLATE}, submitted_at=timezone.now()
    )
    decided = task()
    one = factories.AnnotationFactory(task=decided, user=annotator, result=result)
    factories.AnnotationFactory(task=decided, user=other, result={"topic": SVG + TEMPLATE})
    TaskLabel.objects.create(
        task=decided,
        project=project,
        result=result,
        source="pick",
        annotation=one,
        decided_by=reviewer,
        comment=HOSTILE,
    )
    # Escalated by an annotator, with a hostile note and domain.
    task(is_flagged=True, flag_domain=SHORT, flag_reason=f"Escalation {HOSTILE}", flagged_at=timezone.now())
    # A free task for the admin to label, with a hostile pre-label.
    free = task()
    factories.PredictionFactory(task=free, result={"topic": IMG}, model_version=HOSTILE[:200])
    # Imports, exports, pre-labeling, webhooks, tokens, audit.
    ImportJob.objects.create(
        project=project,
        created_by=admin,
        status=ImportStatus.FAILED,
        format="jsonl",
        file_name=f"{HOSTILE}.jsonl"[:255],
        rows_failed=1,
        errors=[{"line": 1, "message": f"Error {HOSTILE}", "field": SHORT}],
        message=f"Failed {HOSTILE}",
    )
    ExportJob.objects.create(
        project=project,
        created_by=admin,
        format="jsonl",
        mode="raw",
        filters={"skill": SHORT, "annotators": [annotator.username]},
        params_hash="x" * 64,
        status=ExportStatus.FAILED,
        error=f"Export error {HOSTILE}",
    )
    labeler = Labeler.objects.create(
        project=project, name=SHORT, kind="rules", config={"keywords": {IMG: [SCRIPT]}}, created_by=admin
    )
    run = PrelabelRun.objects.create(
        project=project,
        labeler=labeler,
        labeler_kind="rules",
        labeler_name=SHORT,
        model_version=HOSTILE[:200],
        status=RunStatus.FAILED,
        message=f"Run failed {HOSTILE}",
        fingerprint="f" * 64,
        created_by=admin,
    )
    Webhook.objects.create(project=project, url=f"http://8.8.8.8/{IMG}", events=["export.ready"], secret="s")
    ApiToken.objects.create(user=admin, name=HOSTILE[:100], prefix="abcd1234", key_hash="0" * 64)
    AuditEvent.objects.create(
        project=project,
        actor=annotator,
        action="review.reject",
        target_type=SHORT,
        data={"comment": HOSTILE, SHORT: IMG},
    )
    return project, admin, {"pending": pending.pk, "split": split.pk, "decided": decided.pk, "run": run.pk}


def test_hostile_text_is_inert_and_literal_on_every_page(page):
    project, admin, ids = seed()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, admin)
    p = f"/projects/{project.pk}"
    # page -> literal text it must show (beyond the project name, which most pages show).
    pages = {
        "/": [SCRIPT, IMG],
        f"{p}/": [HOSTILE, SCRIPT],  # description; schema titles and options
        f"{p}/members/": [f"anna{SHORT}", SHORT],  # usernames, skill names
        f"{p}/audit/": [HOSTILE, f"anna{SHORT}"],
        f"{p}/tasks/": [f"Title {HOSTILE}"[:60]],
        f"{p}/progress/": [f"anna{SHORT}", SHORT],
        f"{p}/quality/": [],
        f"{p}/import/": [f"{HOSTILE}.jsonl"[:60], f"Error {HOSTILE}"[:60]],
        f"{p}/exports/": [f"Export error {HOSTILE}"[:60]],
        f"{p}/prelabel/": [SHORT],
        f"{p}/prelabel/runs/{ids['run']}/": [f"Run failed {HOSTILE}"[:60]],
        f"{p}/guidelines/": [SCRIPT],
        f"{p}/schema/": [],
        f"{p}/review/": [f"Text {HOSTILE}", HOSTILE],
        f"{p}/returned/": [f"Reason {HOSTILE}"],
        f"{p}/adjudicate/": [],
        f"{p}/adjudicate/{ids['split']}/": [f"Text {HOSTILE}"],
        f"{p}/adjudicate/{ids['decided']}/": [],
        f"{p}/my-submissions/": [],
        f"{p}/label/": [f"Title {HOSTILE}"],
        "/profile/": [HOSTILE[:100], SHORT],
    }
    for url, expected in pages.items():
        response = page.goto(url)
        assert response is not None and response.status == 200, f"{url}: {response and response.status}"
        page.wait_for_load_state("networkidle")
        seen = page.evaluate(INSPECT_JS)
        where = f"{url} ({page.url})"
        assert seen["flag"] is None, f"{where}: a payload ran (window.__xss = {seen['flag']})"
        assert seen["marked"] == 0, f"{where}: {seen['marked']} element(s) built from user text"
        assert seen["handlers"] == [], f"{where}: event handler attributes {seen['handlers'][:5]}"
        assert seen["jsUrls"] == [], f"{where}: javascript: URLs {seen['jsUrls'][:5]}"
        assert seen["scripts"] == 0 and seen["svgs"] == 0, where
        for literal in expected:
            assert literal in seen["text"], f"{where}: {literal!r} is not shown literally"
        if url != "/" and url != "/profile/":
            assert SCRIPT in seen["text"] or SCRIPT in page.title(), f"{where}: the project name is not shown literally"
    screenshot(page, "xss-corpus-profile")
    assert dialogs == [], dialogs
    assert page.console_errors == [], page.console_errors
