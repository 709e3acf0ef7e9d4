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

Searches never lag behind: ``task_search_q`` matches indexed articles through the GIN index and
computes the document on the fly for the rows not indexed yet, so an article is found the moment
its import batch commits; the catch-up only makes searching it cheap again.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

SEARCH_CONFIG = "english"
SEARCH_INDEX_NAME = "article_fts_idx"  # the former expression index (dropped by assignment 0005)
DOCUMENT_INDEX_NAME = "article_search_document_idx"
PENDING_INDEX_NAME = "article_search_pending_idx"
INDEX_BATCH = 2000
# The document of one article, as Django's SearchVector("title", "text") spells it.
DOCUMENT_SQL = f"to_tsvector('{SEARCH_CONFIG}'::regconfig, COALESCE(title, '') || ' ' || COALESCE(text, ''))"


def article_document() -> SearchVector:
    return SearchVector("title", "text", config=SEARCH_CONFIG)


def article_search_index() -> GinIndex:
    # Migration 0003 imports this: keep the expression stable.
    return GinIndex(article_document(), name=SEARCH_INDEX_NAME)


def task_search_q(query: str) -> Q:
    """Tasks whose article matches ``query`` (web-search syntax on PostgreSQL: words, "phrases", -word, or)."""
    if settings.IS_POSTGRES:
        tsquery = f"websearch_to_tsquery('{SEARCH_CONFIG}'::regconfig, %s)"
        matching = RawSQL(
            f"SELECT id FROM documents_article WHERE search_document @@ {tsquery} "
            # Not indexed yet (just imported or changed): the same document, computed on the fly.
            f"UNION ALL SELECT id FROM documents_article WHERE search_document IS NULL AND {DOCUMENT_SQL} @@ {tsquery}"
            # OFFSET 0 keeps PostgreSQL from flattening the subquery into a join. Flattened, under
            # the page's LIMIT the planner walks tasks in list order and checks each article's
            # document (18 s for a rare word on 1,000,000 articles); kept apart, the subquery runs
            # once off the GIN index and each task is checked against its result (6 ms).
            " OFFSET 0",
            (query, query),
        )
        return Q(article_id__in=matching)
    return Q(article__title__icontains=query) | Q(article__text__icontains=query)


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
