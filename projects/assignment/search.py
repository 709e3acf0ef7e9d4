"""Full-text search over article title and text: a stored tsvector + GIN on PostgreSQL, icontains on SQLite.

Why a stored column: computing ``to_tsvector('english', title || ' ' || text)`` costs about a
millisecond per article, which an expression index would charge to every INSERT, capping imports
near 1,000 articles/s. Instead the column ``documents_article.search_document`` (added by
assignment migration 0005 on PostgreSQL; deliberately not a model field, so ORM reads of articles
never load it: it is larger than the text) is filled after the rows are written, by
``index_pending`` in batches of ``INDEX_BATCH``. Imports queue it as the Celery job
``search.index_articles`` when they finish; beat runs it every minute for articles written by any
other path. A GIN index covers the column and a partial index finds the rows still NULL. Imports
set it back to NULL when they change an article's fields.

Searches never lag behind: ``task_search_q`` matches indexed articles through their stored
document and computes the document on the fly for the rows not indexed yet, so an article is
found the moment its import batch commits; the catch-up only makes searching it cheap again.
A search runs in one of two shapes, chosen per request for the list being searched: a walk of the
list that tests each task's article (a word common in that list) or the GIN index first (a rare
one); see ``task_search_q`` and ``search_shape``.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import connection
from django.db.models import BooleanField, Exists, F, Func, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from projects.documents.models import Article

SEARCH_CONFIG = "english"
SEARCH_INDEX_NAME = "article_fts_idx"  # the former expression index (dropped by assignment 0005)
DOCUMENT_INDEX_NAME = "article_search_document_idx"
PENDING_INDEX_NAME = "article_search_pending_idx"
INDEX_BATCH = 2000
# The document of one article, as Django's SearchVector("title", "text") spells it.
DOCUMENT_SQL = f"to_tsvector('{SEARCH_CONFIG}'::regconfig, COALESCE(title, '') || ' ' || COALESCE(text, ''))"
TSQUERY_SQL = f"websearch_to_tsquery('{SEARCH_CONFIG}'::regconfig, %s)"
# A search is "common" in a list when at least PROBE_MATCHES of its first PROBE_ROWS tasks match
# (1 %): then walking the list in order and testing each article finds a page within a few
# thousand lookups, where collecting every match from the GIN index would cost more.
PROBE_ROWS = 5_000
PROBE_MATCHES = 50
COMMON, RARE = "common", "rare"
# The rare shape collects the matching article ids once, up to this many, and passes them on.
RARE_IDS = 10_000


def article_document() -> SearchVector:
    return SearchVector("title", "text", config=SEARCH_CONFIG)


def article_search_index() -> GinIndex:
    # Migration 0003 imports this: keep the expression stable.
    return GinIndex(article_document(), name=SEARCH_INDEX_NAME)


class _EqualsAny(Func):
    """``column = ANY(array)``."""

    arg_joiner = " = ANY"
    template = "%(expressions)s"
    output_field = BooleanField()


def _match_sql() -> str:
    """An article (columns unqualified) matches the tsquery: its stored document, or the document
    computed on the fly while it is not indexed yet. Takes the query text twice."""
    return f"(search_document @@ {TSQUERY_SQL} OR (search_document IS NULL AND {DOCUMENT_SQL} @@ {TSQUERY_SQL}))"


def task_search_q(
    query: str, *, project_id: int | None = None, tasks: QuerySet | None = None, shape: str | None = None
) -> Q:
    """Tasks whose article matches ``query`` (web-search syntax on PostgreSQL: words, "phrases", -word, or).

    On PostgreSQL the condition takes one of two shapes, with the same rows either way:

    - ``RARE``: the matching article ids are collected first, from the GIN index (and, for rows
      not indexed yet, the document computed on the fly), in one statement; the list's count and
      page then select ``article_id IN (those ids)`` through the ``article_id`` index, so the
      search runs once per request and the planner knows how many rows to expect. Past
      ``RARE_IDS`` ids the condition is ``article_id = ANY(ARRAY(subquery))`` instead, which
      PostgreSQL computes once per statement and never flattens into a join. Either way the
      planner never walks the list in order hoping to meet the matches early: flattened, that
      walk took 18 s for a rare word on 1,000,000 articles, and with ``IN (... OFFSET 0)`` it
      still walked 123,457 tasks (120 ms) to the one article holding a rare number, the page's
      ``LIMIT`` being that single match. Its cost grows with the number of matches: a word in a
      quarter of a million articles took seconds to collect, hash and join.
    - ``COMMON``: a correlated ``EXISTS`` on the task's article, which PostgreSQL may plan either
      way: walk the list in order testing each article's stored document and stop after the page
      (a word in 25 % of articles: about 200 tasks for a page of 50), or start from the GIN index
      where it expects that to be cheaper (counts, deep pages).

    ``shape`` forces one; otherwise ``search_shape`` chooses on ``tasks``, the list being searched
    (with its other filters); without ``tasks``, ``RARE``. ``project_id`` narrows the rare
    shape's subquery to that project's articles.
    """
    if not settings.IS_POSTGRES:
        return Q(article__title__icontains=query) | Q(article__text__icontains=query)
    if shape is None:
        shape = search_shape(query, project_id=project_id, tasks=tasks) if tasks is not None else RARE
    if shape == COMMON:
        matching = Article.objects.filter(pk=OuterRef("article_id")).filter(
            RawSQL(_match_sql(), (query, query), output_field=BooleanField())
        )
        return Q(Exists(matching))
    where, params = ("project_id = %s AND ", [project_id]) if project_id is not None else ("", [])
    matching_sql = (
        f"SELECT id FROM documents_article WHERE {where}search_document @@ {TSQUERY_SQL} "
        # Not indexed yet (just imported or changed): the same document, computed on the fly.
        f"UNION ALL SELECT id FROM documents_article WHERE {where}search_document IS NULL "
        f"AND {DOCUMENT_SQL} @@ {TSQUERY_SQL}"
    )
    matching_params = (*params, query, *params, query)
    with connection.cursor() as cursor:
        cursor.execute(f"{matching_sql} LIMIT %s", [*matching_params, RARE_IDS + 1])
        ids = [row[0] for row in cursor.fetchall()]
    if len(ids) <= RARE_IDS:
        return Q(article_id__in=ids)  # none: Django answers an empty list without asking the database
    return Q(_EqualsAny(F("article_id"), RawSQL(f"ARRAY({matching_sql})", matching_params)))


def search_shape(query: str, *, project_id: int | None, tasks: QuerySet) -> str:
    """``COMMON`` or ``RARE`` for searching ``tasks`` (the list with its other filters) for ``query``.

    1. The planner's own estimate, from the statistics of the stored documents, costs a plan
       (well under a millisecond): if it expects the query in under 1 % of the articles
       (``PROBE_MATCHES / PROBE_ROWS``) and fewer than ``PROBE_ROWS`` of the project's articles
       are waiting for their document (the rare shape computes those on the fly), ``RARE``.
    2. Otherwise the list itself is probed (``probe_is_common``), because the statistics cover
       every project and no filter: ``COMMON`` if at least ``PROBE_MATCHES`` of its first
       ``PROBE_ROWS`` tasks (by id) match or it is shorter than that, else ``RARE``.
    """
    if expected_share(query) < PROBE_MATCHES / PROBE_ROWS and pending_count(project_id, cap=PROBE_ROWS) < PROBE_ROWS:
        return RARE
    return COMMON if probe_is_common(tasks, query) else RARE


def expected_share(query: str) -> float:
    """The planner's estimate of the share of articles whose stored document matches ``query``
    (1.0 while the table has no statistics yet)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'documents_article'::regclass")
        total = cursor.fetchone()[0]
        if not total or total <= 0:  # never analysed (-1) or empty
            return 1.0
        cursor.execute(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM documents_article WHERE search_document @@ {TSQUERY_SQL}", [query]
        )
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return plan[0]["Plan"]["Plan Rows"] / total


def pending_count(project_id: int | None, *, cap: int) -> int:
    """How many articles (of the project) still have no stored document, counted up to ``cap``."""
    where, params = ("project_id = %s AND ", [project_id]) if project_id is not None else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM documents_article WHERE {where}search_document IS NULL LIMIT %s) p",
            [*params, cap],
        )
        return cursor.fetchone()[0]


def probe_is_common(tasks: QuerySet, query: str) -> bool:
    """Whether ``query`` matches at least ``PROBE_MATCHES`` of the first ``PROBE_ROWS`` of
    ``tasks`` by id, or ``tasks`` has fewer rows than that. One statement: each task's
    article is tested in turn by a correlated scalar subquery, which PostgreSQL never turns into
    a join, and the walk stops at ``PROBE_MATCHES``, so it costs at most ``PROBE_ROWS`` lookups
    whatever the planner believes about the word; the list is counted only when that fell short."""
    # By id, whatever order the list is shown in: sorting a million tasks by an unindexed key
    # only to take a sample would cost more than the search.
    sample = tasks.order_by("pk").values_list("article_id", flat=True)[:PROBE_ROWS]
    sample_sql, sample_params = sample.query.sql_with_params()
    sql = (
        f"SELECT (SELECT count(*) FROM (SELECT 1 FROM ({sample_sql}) AS sample "
        f"WHERE (SELECT {_match_sql()} FROM documents_article WHERE id = sample.article_id) LIMIT %s) AS hits) >= %s "
        f"OR (SELECT count(*) FROM ({sample_sql}) AS sample) < %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*sample_params, query, query, PROBE_MATCHES, PROBE_MATCHES, *sample_params, PROBE_ROWS])
        return cursor.fetchone()[0]


def index_pending(*, project_id: int | None = None, limit: int | None = None) -> int:
    """Fill ``search_document`` for articles that have none (PostgreSQL; a no-op elsewhere).

    Works in batches of ``INDEX_BATCH`` rows, each its own statement, so it never holds many row
    locks for long; rows another run holds are skipped. Returns the number of articles indexed.
    """
    if not settings.IS_POSTGRES:
        return 0
    where = "search_document IS NULL" + (" AND project_id = %s" if project_id is not None else "")
    params = [project_id] if project_id is not None else []
    sql = (
        f"UPDATE documents_article SET search_document = {DOCUMENT_SQL} WHERE id IN ("
        f"SELECT id FROM documents_article WHERE {where} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
    )
    done = 0
    with connection.cursor() as cursor:
        while limit is None or done < limit:
            cursor.execute(sql, [*params, INDEX_BATCH])
            if not cursor.rowcount:
                break
            done += cursor.rowcount
    return done


def pending_ids(project_id: int) -> list[str]:
    """External ids of a project's articles still without a search document (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT external_id FROM documents_article WHERE project_id = %s AND search_document IS NULL ORDER BY id",
            [project_id],
        )
        return [row[0] for row in cursor.fetchall()]


def reset_documents(project_id: int, external_ids: list[str]) -> None:
    """Drop the stored documents of articles whose fields changed (PostgreSQL; searches recompute them)."""
    if settings.IS_POSTGRES and external_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE documents_article SET search_document = NULL WHERE project_id = %s AND external_id = ANY(%s)",
                [project_id, external_ids],
            )
