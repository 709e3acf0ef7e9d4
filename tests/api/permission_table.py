"""The role x endpoint table for every route under ``/api/v1/``.

One entry per (METHOD, path template), exactly as drf-spectacular spells the path (``{pk}``,
``{project_pk}``, ``{task_id}``...). Each entry says which status every persona gets:

- ``admin``, ``manager``, ``reviewer``, ``annotator``: members of the test project (see ``world``
  in ``test_permissions.py``); the annotator holds a lease on ``{task_id}`` and has a token
  ``{token_pk}``;
- ``outsider``: admin of *another* project. Anything inside our project must be 404 (never data,
  never 403, which would confirm it exists);
- ``anonymous``: no credentials (401, since token auth is the first authenticator).

``test_every_api_endpoint_is_in_the_table`` fails when a route has no entry, so a new endpoint
cannot ship without its permissions being written down here.

To add an endpoint: copy the closest entry, set the statuses, and give ``body`` (the JSON an
allowed role sends; a callable ``body(world) -> dict`` when it needs ids) and ``ids`` (overrides
for placeholders in the path, ``ids(world, user) -> dict``) when the defaults in
``test_permissions.PLACEHOLDERS`` do not fit. Allowed writes must succeed with that body, so the
table also proves the happy path works for each role that may use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("admin", "manager", "reviewer", "annotator", "outsider", "anonymous")


@dataclass(frozen=True)
class Rule:
    statuses: dict[str, int]
    body: Any = None
    ids: Any = None
    extra: dict = field(default_factory=dict)


def rule(
    *,
    admin: int,
    manager: int | None = None,
    reviewer: int | None = None,
    annotator: int | None = None,
    outsider: int = 404,
    anonymous: int = 401,
    body: Any = None,
    ids: Any = None,
) -> Rule:
    """Statuses cascade down the role ladder: an unset role gets the value of the one above it."""
    manager = admin if manager is None else manager
    reviewer = manager if reviewer is None else reviewer
    annotator = reviewer if annotator is None else annotator
    statuses = {
        "admin": admin,
        "manager": manager,
        "reviewer": reviewer,
        "annotator": annotator,
        "outsider": outsider,
        "anonymous": anonymous,
    }
    return Rule(statuses=statuses, body=body, ids=ids)


def public(status: int = 200) -> Rule:
    return Rule(statuses=dict.fromkeys(ROLES, status))


PROJECT_PATCH = {"description": "changed by the permission table"}


TABLE: dict[tuple[str, str], Rule] = {
    # --- schema and docs: public (they describe the API, no data) -----------------------------
    ("GET", "/api/v1/schema/"): public(),
    ("GET", "/api/v1/docs/"): public(),
    ("GET", "/api/v1/redoc/"): public(),
    # The router's root lists the routes (no data); members only, like the rest.
    ("GET", "/api/v1/"): rule(admin=200, outsider=200),
    # --- the current user -----------------------------------------------------------------------
    ("GET", "/api/v1/me/"): rule(admin=200, outsider=200),
    ("GET", "/api/v1/tokens/"): rule(admin=200, outsider=200),
    ("POST", "/api/v1/tokens/"): rule(admin=201, outsider=201, body={"name": "table", "scope": "read"}),
    # Each user revokes their own token; someone else's is 404 (tests/api/test_cross_object.py).
    ("DELETE", "/api/v1/tokens/{pk}/"): rule(admin=204, outsider=204, ids=lambda w, user: {"pk": w.token_of(user)}),
    # --- projects -------------------------------------------------------------------------------
    # Listing shows only your projects (the outsider sees theirs, never ours: checked by marker).
    ("GET", "/api/v1/projects/"): rule(admin=200, outsider=200),
    # Creating needs staff (ALLOW_PROJECT_CREATION_BY=staff); no persona here is staff.
    ("POST", "/api/v1/projects/"): rule(
        admin=403, outsider=403, body={"name": "New", "label_schema": {"fields": [{"name": "t", "type": "text"}]}}
    ),
    ("GET", "/api/v1/projects/{pk}/"): rule(admin=200),
    ("PUT", "/api/v1/projects/{pk}/"): rule(
        admin=200,
        reviewer=403,
        body=lambda w: {"name": w.project.name, "label_schema": w.project.label_schema, "description": "put"},
    ),
    ("PATCH", "/api/v1/projects/{pk}/"): rule(admin=200, reviewer=403, body=PROJECT_PATCH),
    ("DELETE", "/api/v1/projects/{pk}/"): rule(admin=204, manager=403),
    # --- members and audit ----------------------------------------------------------------------
    ("GET", "/api/v1/projects/{project_pk}/members/"): rule(admin=200, annotator=403),
    ("POST", "/api/v1/projects/{project_pk}/members/"): rule(
        admin=201, reviewer=403, body=lambda w: {"username": w.newcomer.username, "role": "annotator"}
    ),
    ("GET", "/api/v1/projects/{project_pk}/members/{pk}/"): rule(admin=200, annotator=403),
    ("PATCH", "/api/v1/projects/{project_pk}/members/{pk}/"): rule(admin=200, reviewer=403, body={"role": "reviewer"}),
    ("DELETE", "/api/v1/projects/{project_pk}/members/{pk}/"): rule(admin=204, reviewer=403),
    ("GET", "/api/v1/projects/{project_pk}/audit/"): rule(admin=200, reviewer=403),
    ("GET", "/api/v1/projects/{project_pk}/audit/{pk}/"): rule(admin=200, reviewer=403),
    # --- queue and annotating -------------------------------------------------------------------
    # Every member may annotate; admins, managers and reviewers get a free task of their own.
    ("POST", "/api/v1/projects/{project_pk}/next-task/"): rule(admin=200),
    # The annotator holds {task_id}; reviewers and up see every task of their projects.
    ("GET", "/api/v1/tasks/{task_id}/"): rule(admin=200),
    ("POST", "/api/v1/tasks/{task_id}/skip/"): rule(admin=200),
    ("GET", "/api/v1/tasks/{task_id}/annotations/"): rule(admin=200),
    # The task has overlap 1 and the annotator's lease fills it, so others are refused (409).
    ("POST", "/api/v1/tasks/{task_id}/annotations/"): rule(
        admin=409, annotator=201, body={"result": {"topic": "business"}}
    ),
    ("GET", "/api/v1/tasks/{task_id}/draft/"): rule(admin=200),
    ("PUT", "/api/v1/tasks/{task_id}/draft/"): rule(admin=200, body={"result": {"topic": "politics"}}),
    # Comments: whoever may see the task may read and add them.
    ("GET", "/api/v1/tasks/{task_id}/comments/"): rule(admin=200),
    ("POST", "/api/v1/tasks/{task_id}/comments/"): rule(admin=201, body={"text": "Is this an ORG?"}),
    # Every member has their own submissions (maybe none).
    ("GET", "/api/v1/projects/{project_pk}/my-annotations/"): rule(admin=200),
}


# --- imports (projects/imports/api.py): managers and admins only ------------------------------


def _import_job(w, user=None) -> dict:
    """A queued import job of the test project (with one stored row error for errors.csv)."""
    from projects.imports.models import ImportJob

    job = ImportJob.objects.create(
        project=w.project,
        created_by=w.users["admin"],
        format="jsonl",
        errors=[{"line": 2, "message": f"bad row {MARKER}"}],
    )
    return {"pk": job.pk, "project_pk": w.project.pk}


MARKER = "zq-secret-marker-7731"  # the same marker as test_permissions.MARKER

TABLE.update(
    {
        ("GET", "/api/v1/projects/{project_pk}/imports/"): rule(admin=200, reviewer=403),
        ("POST", "/api/v1/projects/{project_pk}/imports/"): rule(
            admin=202, reviewer=403, body={"articles": [{"id": "perm-1", "text": "Imported by the table."}]}
        ),
        ("GET", "/api/v1/projects/{project_pk}/imports/{pk}/"): rule(admin=200, reviewer=403, ids=_import_job),
        ("POST", "/api/v1/projects/{project_pk}/imports/{pk}/cancel/"): rule(admin=200, reviewer=403, ids=_import_job),
        ("GET", "/api/v1/projects/{project_pk}/imports/{pk}/errors.csv"): rule(
            admin=200, reviewer=403, ids=_import_job
        ),
    }
)


# --- review and adjudication (projects/annotations/review_api.py) -----------------------------


def _pending_annotation(w, user=None) -> dict:
    """The annotator's submitted annotation on {task_id}, waiting for review (made once per world)."""
    from projects.annotations.models import Annotation

    annotation, _ = Annotation.objects.get_or_create(
        task=w.task,
        user=w.users["annotator"],
        defaults={
            "project": w.project,
            "result": {"topic": "business"},
            "status": "submitted",
            "review_state": "pending",
        },
    )
    return {"annotation_id": annotation.pk, "project_pk": w.project.pk}


TABLE.update(
    {
        # Reviewers and up review; annotators are refused (403). The pending one is the annotator's own.
        ("POST", "/api/v1/projects/{project_pk}/review/next/"): rule(admin=200, annotator=403, ids=_pending_annotation),
        ("GET", "/api/v1/projects/{project_pk}/review/queue/"): rule(admin=200, annotator=403),
        # Every member lists their own rejected annotations.
        ("GET", "/api/v1/projects/{project_pk}/review/returned/"): rule(admin=200),
        ("GET", "/api/v1/projects/{project_pk}/adjudication/"): rule(admin=200, annotator=403),
        ("GET", "/api/v1/annotations/{annotation_id}/review/"): rule(admin=200, annotator=403, ids=_pending_annotation),
        ("POST", "/api/v1/annotations/{annotation_id}/review/"): rule(
            admin=201, annotator=403, body={"verdict": "accept"}, ids=_pending_annotation
        ),
        # The history: reviewers and up, and the annotation's own annotator.
        ("GET", "/api/v1/annotations/{annotation_id}/reviews/"): rule(admin=200, ids=_pending_annotation),
        ("GET", "/api/v1/tasks/{task_id}/adjudicate/"): rule(admin=200, annotator=403),
        ("POST", "/api/v1/tasks/{task_id}/adjudicate/"): rule(
            admin=200, annotator=403, body={"result": {"topic": "business"}}
        ),
    }
)


# --- task manager, manual assignment, progress, escalation (projects/assignment/manager_api.py) --

TABLE.update(
    {
        ("GET", "/api/v1/projects/{project_pk}/tasks/"): rule(admin=200, reviewer=403),
        ("POST", "/api/v1/projects/{project_pk}/tasks/bulk/"): rule(
            admin=200,
            reviewer=403,
            body=lambda w: {"action": "set_priority", "priority": 3, "task_ids": [w.open_task.pk]},
        ),
        ("POST", "/api/v1/projects/{project_pk}/tasks/assign/"): rule(
            admin=200, reviewer=403, body=lambda w: {"usernames": ["anna"], "task_ids": [w.open_task.pk]}
        ),
        ("GET", "/api/v1/projects/{project_pk}/progress/"): rule(admin=200, reviewer=403),
        # The annotator holds {task_id}; reviewers and up may flag any task of their projects.
        ("POST", "/api/v1/tasks/{task_id}/escalate/"): rule(admin=200, body={"domain": "medicine"}),
    }
)

# Inviting creates an account and a membership: managers and admins only.
TABLE[("POST", "/api/v1/projects/{project_pk}/members/invite/")] = rule(
    admin=201, reviewer=403, body={"username": "invitee", "email": "invitee@example.com", "role": "annotator"}
)


# --- exports and webhooks (projects/exports/api.py): managers and admins only -----------------


def _built_export(w, user=None) -> dict:
    """A finished snapshot of the test project (built once per world)."""
    from projects.exports.filters import parse_options
    from projects.exports.formats import FORMAT_NAMES
    from projects.exports.models import ExportJob
    from projects.exports.services import export_build, export_snapshot_start

    job = ExportJob.objects.filter(project=w.project, status="done").first()
    if job is None:
        options = parse_options({"format": "jsonl"}, formats=FORMAT_NAMES)
        job, _ = export_snapshot_start(project=w.project, actor=None, options=options)
        export_build(job_id=job.pk)
    return {"pk": job.pk, "other": job.pk}


def _webhook(w, user=None) -> dict:
    """A fresh webhook each time (DELETE removes it)."""
    from projects.exports.models import Webhook

    hook = Webhook.objects.create(project=w.project, url="http://8.8.8.8/hook", events=["export.ready"], secret="s")
    return {"pk": hook.pk}


TABLE.update(
    {
        ("GET", "/api/v1/projects/{project_pk}/export/"): rule(admin=200, reviewer=403),
        ("GET", "/api/v1/projects/{project_pk}/exports/"): rule(admin=200, reviewer=403),
        ("POST", "/api/v1/projects/{project_pk}/exports/"): rule(admin=202, reviewer=403, body={"format": "csv"}),
        ("GET", "/api/v1/projects/{project_pk}/exports/{pk}/"): rule(admin=200, reviewer=403, ids=_built_export),
        ("GET", "/api/v1/projects/{project_pk}/exports/{pk}/download/"): rule(
            admin=200, reviewer=403, ids=_built_export
        ),
        ("GET", "/api/v1/projects/{project_pk}/exports/{pk}/diff/{other}/"): rule(
            admin=200, reviewer=403, ids=_built_export
        ),
        ("GET", "/api/v1/projects/{project_pk}/webhooks/"): rule(admin=200, reviewer=403),
        ("POST", "/api/v1/projects/{project_pk}/webhooks/"): rule(
            admin=201, reviewer=403, body={"url": "http://8.8.8.8/hook", "events": ["task.completed"]}
        ),
        ("GET", "/api/v1/projects/{project_pk}/webhooks/{pk}/"): rule(admin=200, reviewer=403, ids=_webhook),
        ("PATCH", "/api/v1/projects/{project_pk}/webhooks/{pk}/"): rule(
            admin=200, reviewer=403, body={"is_active": False}, ids=_webhook
        ),
        ("DELETE", "/api/v1/projects/{project_pk}/webhooks/{pk}/"): rule(admin=204, reviewer=403, ids=_webhook),
        ("GET", "/api/v1/projects/{project_pk}/webhooks/{pk}/deliveries/"): rule(admin=200, reviewer=403, ids=_webhook),
    }
)

# Inviting creates an account and a membership: managers and admins only.
TABLE[("POST", "/api/v1/projects/{project_pk}/members/invite/")] = rule(
    admin=201, reviewer=403, body={"username": "invitee", "email": "invitee@example.com", "role": "annotator"}
)

# --- quality (projects/quality/api.py) ----------------------------------------------------------


def _gold_alert(w, user=None) -> dict:
    """An open gold alert for the annotator (made once per world)."""
    from projects.quality.models import GoldAlert

    alert, _ = GoldAlert.objects.get_or_create(
        project=w.project,
        user=w.users["annotator"],
        resolved_at=None,
        defaults={"accuracy": 0.4, "threshold": 0.7, "gold_answers": 5},
    )
    return {"alert_id": alert.pk}


# --- pre-labeling (projects/prelabel/api.py): managers run and read, admins configure labelers ----

PRELABEL_RULES = {"rules": [{"field": "topic", "value": "business", "keywords": ["bank"]}]}


def _labeler(w, user=None) -> dict:
    from projects.prelabel.models import Labeler

    labeler, _ = Labeler.objects.get_or_create(
        project=w.project, name="table-rules", defaults={"kind": "rules", "config": PRELABEL_RULES}
    )
    return {"pk": labeler.pk}


def _run(w, user=None) -> dict:
    from projects.prelabel.models import PrelabelRun

    run, _ = PrelabelRun.objects.get_or_create(
        project=w.project,
        labeler_name="rules",
        defaults={
            "labeler_kind": "rules",
            "config": PRELABEL_RULES,
            "model_version": "rules-table",
            "fingerprint": "x",
        },
    )
    return {"pk": run.pk}


TABLE.update(
    {
        # Reviewers and up read the stored figures; annotators are refused (403).
        ("GET", "/api/v1/projects/{project_pk}/quality/"): rule(admin=200, annotator=403),
        ("GET", "/api/v1/projects/{project_pk}/quality/annotators/"): rule(admin=200, annotator=403),
        ("GET", "/api/v1/projects/{project_pk}/quality/alerts/"): rule(admin=200, annotator=403),
        ("GET", "/api/v1/projects/{project_pk}/quality/adjudication/"): rule(admin=200, annotator=403),
        ("GET", "/api/v1/projects/{project_pk}/quality/settings/"): rule(admin=200, annotator=403),
        # Managers and admins change settings, resolve alerts and start a recompute.
        ("PATCH", "/api/v1/projects/{project_pk}/quality/settings/"): rule(
            admin=200, reviewer=403, body={"gold_threshold": 0.8, "pause_on_alert": True}
        ),
        ("POST", "/api/v1/projects/{project_pk}/quality/alerts/{alert_id}/resolve/"): rule(
            admin=200, reviewer=403, body={"resume_queue": True}, ids=_gold_alert
        ),
        ("POST", "/api/v1/projects/{project_pk}/quality/recompute/"): rule(admin=202, reviewer=403),
    }
)

TABLE.update(
    {
        ("GET", "/api/v1/projects/{project_pk}/prelabel-runs/"): rule(admin=200, reviewer=403),
        ("POST", "/api/v1/projects/{project_pk}/prelabel-runs/"): rule(
            admin=202, reviewer=403, body={"labeler": "rules", "config": PRELABEL_RULES, "filter": "unlabeled"}
        ),
        ("GET", "/api/v1/projects/{project_pk}/prelabel-runs/{pk}/"): rule(admin=200, reviewer=403, ids=_run),
        ("POST", "/api/v1/projects/{project_pk}/prelabel-runs/{pk}/cancel/"): rule(admin=200, reviewer=403, ids=_run),
        ("GET", "/api/v1/projects/{project_pk}/prelabel-stats/"): rule(admin=200, reviewer=403),
        ("GET", "/api/v1/projects/{project_pk}/prelabel-models/"): rule(admin=200, reviewer=403),
        ("POST", "/api/v1/projects/{project_pk}/prelabel-models/"): rule(admin=202, reviewer=403),
        ("GET", "/api/v1/projects/{project_pk}/labelers/"): rule(admin=200, reviewer=403),
        ("POST", "/api/v1/projects/{project_pk}/labelers/"): rule(
            admin=201, manager=403, body={"name": "kw", "kind": "rules", "config": PRELABEL_RULES}
        ),
        ("GET", "/api/v1/projects/{project_pk}/labelers/{pk}/"): rule(admin=200, reviewer=403, ids=_labeler),
        ("PATCH", "/api/v1/projects/{project_pk}/labelers/{pk}/"): rule(
            admin=200, manager=403, body={"is_active": False}, ids=_labeler
        ),
        ("DELETE", "/api/v1/projects/{project_pk}/labelers/{pk}/"): rule(admin=204, manager=403, ids=_labeler),
        ("POST", "/api/v1/projects/{project_pk}/labelers/{pk}/check/"): rule(admin=200, reviewer=403, ids=_labeler),
    }
)
