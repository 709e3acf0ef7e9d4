"""Task manager and queue on a 1,000,000-task project (PostgreSQL): list API p50/p99 and next-task.

Needs ``DATABASE_URL=postgres://...``. Fills a project ``bench-manager`` with ``--n`` tasks (default
1,000,000) in a few set-based statements (``INSERT ... SELECT generate_series``, not the ORM; kept
for the next run) and indexes their search documents (``index_pending``, as an import's catch-up
job does), then calls the API in-process (full middleware, token auth) ``--calls`` times
each (default 30): the first page, filters, searches (common and rare words, a phrase, ``or``,
negation, with filters and sorts, a later page, and with 1 % of the articles not indexed yet),
sorts and a late page of ``GET /api/v1/projects/{id}/tasks/``, and next-task → submit for one
annotator. Reports p50/p99 ms, this process's CPU ms and queries per call. In-process, so the
figures carry no HTTP or gunicorn overhead. ``--only TEXT`` runs the cases whose name contains it.
"""

from __future__ import annotations

import json
import os
import time

from bench.scenarios.next_task import django_ready, option
from bench.util import median, percentile

PROJECT_NAME = "bench-manager"
TOPICS = ["markets", "rates", "football", "elections", "vaccines", "chips", "shipping", "climate"]
SKILLS = ["", "", "", "", "medicine", "finance", "coding", ""]


def fill(n: int) -> tuple[int, str, str]:
    """The bench-manager project with ``n`` tasks; returns (project id, manager key, annotator key)."""
    from django.db import connection

    from projects.assignment import search
    from projects.assignment.models import Task
    from projects.core.models import ApiToken, Membership, Project, Role
    from projects.core.services import project_create, token_create
    from tests.factories import SIMPLE_SCHEMA, UserFactory

    manager = UserFactory(username="bench-manager")
    annotator = UserFactory(username="bench-manager-annotator")
    project = Project.objects.filter(name=PROJECT_NAME).first()
    if project is None:
        project = project_create(actor=manager, name=PROJECT_NAME, label_schema=dict(SIMPLE_SCHEMA))
    Membership.objects.get_or_create(project=project, user=annotator, defaults={"role": Role.ANNOTATOR})
    if Task.objects.filter(project=project).count() != n:
        started = time.perf_counter()
        topics = "ARRAY[" + ",".join(f"'{t}'" for t in TOPICS) + "]"
        skills = "ARRAY[" + ",".join(f"'{s}'" for s in SKILLS) + "]"
        with connection.cursor() as cursor:
            for table in ("annotations_annotation", "assignment_assignment", "assignment_task", "documents_article"):
                cursor.execute(f"DELETE FROM {table} WHERE project_id = %s", [project.pk])
            cursor.execute(
                "INSERT INTO documents_article (project_id, external_id, title, text, source, url, domain, meta, "
                "created_at, updated_at) "
                f"SELECT %s, 'm' || i, 'Report ' || i || ' on ' || ({topics})[i %% 8 + 1], "
                f"'Analysts discussed ' || ({topics})[i %% 8 + 1] || ' and ' || ({topics})[(i / 8) %% 8 + 1] "
                "|| ' on day ' || i || '. Officials in Lyon expect changes next year.', "
                "'bench', '', '', '{}', now(), now() FROM generate_series(1, %s) AS i",
                [project.pk, n],
            )
            cursor.execute(
                "INSERT INTO assignment_task (project_id, article_id, segment_index, payload, required_skill, "
                "priority, is_gold, submitted_count, skipped_count, leased_count, is_complete, is_flagged, "
                "flag_domain, flag_reason, flag_unsafe, uncertainty, agreement, created_at, updated_at) "
                f"SELECT a.project_id, a.id, 0, '{{}}', ({skills})[a.id %% 8 + 1], (a.id %% 7)::int, a.id %% 1000 = 0, "
                "CASE WHEN a.id %% 10 < 3 THEN 1 ELSE 0 END, 0, 0, a.id %% 10 < 3, a.id %% 5000 = 0, "
                "CASE WHEN a.id %% 5000 = 0 THEN 'medicine' ELSE '' END, '', false, "
                "CASE WHEN a.id %% 4 = 0 THEN (a.id %% 997) / 997.0 END, "
                "CASE WHEN a.id %% 10 < 3 THEN (a.id %% 101) / 100.0 END, now(), now() "
                "FROM documents_article a WHERE a.project_id = %s",
                [project.pk],
            )
        filled = time.perf_counter()
        # The search documents, as the import's catch-up job fills them (``index_pending``).
        indexed = search.index_pending(project_id=project.pk)
        with connection.cursor() as cursor:
            # Autocommit: VACUUM sets the visibility map, so counts can use index-only scans.
            cursor.execute("VACUUM ANALYZE documents_article")
            cursor.execute("VACUUM ANALYZE assignment_task")
        print(
            json.dumps(
                {
                    "filled_tasks": n,
                    "fill_s": round(filled - started, 1),
                    "indexed": indexed,
                    "index_and_vacuum_s": round(time.perf_counter() - filled, 1),
                }
            ),
            flush=True,
        )
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM documents_article WHERE project_id = %s AND search_document IS NULL)",
                [project.pk],
            )
            if cursor.fetchone()[0]:  # left over from an interrupted run
                search.index_pending(project_id=project.pk)
                cursor.execute("VACUUM ANALYZE documents_article")
    with connection.cursor() as cursor:
        # Reset the queue part: the open tasks go back to nobody.
        cursor.execute("DELETE FROM annotations_annotation WHERE project_id = %s", [project.pk])
        cursor.execute("DELETE FROM assignment_assignment WHERE project_id = %s", [project.pk])
        cursor.execute(
            "UPDATE assignment_task SET leased_count = 0, submitted_count = (article_id %% 10 < 3)::int, "
            "is_complete = article_id %% 10 < 3 "
            "WHERE project_id = %s AND (leased_count > 0 OR is_complete <> (article_id %% 10 < 3))",
            [project.pk],
        )
    keys = []
    for user in (manager, annotator):
        ApiToken.objects.filter(user=user, name="bench").delete()
        keys.append(token_create(user=user, name="bench")[1])
    return project.pk, keys[0], keys[1]


def run(options) -> list[dict]:
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    if not django_ready():
        return [{"skipped": "needs DATABASE_URL=postgres://... (the scenario fills that database)"}]
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.scenarios.submit import RESULT

    call_command("migrate", verbosity=0)
    n = options.n or 1_000_000
    calls = option(options, "calls", 30)
    project_id, manager_key, annotator_key = fill(n)
    base = f"/api/v1/projects/{project_id}/tasks/"
    late_page = max(1, n // 50 // 2)  # the middle of the list
    cases = {
        "first_page": "",
        "status_open": "?status=open",
        "status_completed": "?status=completed",
        "skill": "?required_skill=medicine",
        "gold": "?is_gold=true",
        "flagged": "?is_flagged=true",
        "search": "?search=vaccines",
        "search_phrase": "?search=%22football%20and%20chips%22",
        "search_or": "?search=vaccines%20or%20chips",
        "search_not": "?search=-vaccines",
        "search_rare": "?search=123457",  # one article
        "search_absent": "?search=zeppelin",
        "search_completed_by_priority": "?search=vaccines&status=completed&ordering=-priority",
        "search_gold": "?search=vaccines&is_gold=true",
        "search_page_30": "?search=vaccines&page=30",
        "sort_priority_desc": "?ordering=-priority",
        "sort_uncertainty": "?ordering=uncertainty",
        "sort_agreement": "?ordering=agreement",  # no index: a top-N sort
        "open_by_priority": "?status=open&ordering=-priority",
        f"page_{late_page}": f"?page={late_page}",
    }
    # While the search catch-up runs: 1 % of the articles (spread over the list) have no document yet.
    pending_cases = {"pending_search": "?search=vaccines", "pending_search_rare": "?search=123457"}
    extra = list(getattr(options, "extra", []) or [])
    only = extra[extra.index("--only") + 1] if "--only" in extra else ""
    manager = Client(HTTP_AUTHORIZATION=f"Token {manager_key}")

    def measure(name: str, query: str) -> dict:
        times, cpu, queries = [], [], 0
        for i in range(calls + 1):
            with CaptureQueriesContext(connection) as captured:
                t0, c0 = time.perf_counter(), time.process_time()
                response = manager.get(base + query)
                elapsed, spent = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
            assert response.status_code == 200, (name, response.content[:300])
            if i:  # the first call warms caches
                times.append(elapsed)
                cpu.append(spent)
                queries = len(captured)
        body = response.json()
        return {
            "tasks": n,
            "case": name,
            "p50_ms": round(median(times), 1),
            "p99_ms": round(percentile(times, 99), 1),
            "app_cpu_ms": round(median(cpu), 1),  # this process only; the database's time is the rest
            "queries": queries,
            "count": body["count"],
            "count_is_estimate": body["count_is_estimate"],
            "rows": len(body["results"]),
        }

    figures = [measure(name, query) for name, query in cases.items() if only in name]
    if any(only in name for name in pending_cases):
        from projects.assignment import search

        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE documents_article SET search_document = NULL WHERE project_id = %s AND id %% 100 = 0",
                [project_id],
            )
        try:
            figures += [measure(name, query) for name, query in pending_cases.items() if only in name]
        finally:
            search.index_pending(project_id=project_id)
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE documents_article")  # also empties the GIN index's pending list
    if only and only not in "next_task_then_submit":
        return figures
    annotator = Client(HTTP_AUTHORIZATION=f"Token {annotator_key}")
    next_ms, submit_ms = [], []
    body = json.dumps(RESULT)
    for _ in range(calls * 3):
        t0 = time.perf_counter()
        response = annotator.post(f"/api/v1/projects/{project_id}/next-task/", data="", content_type="application/json")
        next_ms.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.content[:300]
        t0 = time.perf_counter()
        response = annotator.post(
            f"/api/v1/tasks/{response.json()['id']}/annotations/", data=body, content_type="application/json"
        )
        submit_ms.append((time.perf_counter() - t0) * 1000)
    figures.append(
        {
            "tasks": n,
            "case": "next_task_then_submit",
            "next_p50_ms": round(median(next_ms[3:]), 1),
            "next_p99_ms": round(percentile(next_ms[3:], 99), 1),
            "submit_p50_ms": round(median(submit_ms[3:]), 1),
            "submit_p99_ms": round(percentile(submit_ms[3:], 99), 1),
        }
    )
    return figures
