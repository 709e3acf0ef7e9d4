"""Full-text search over article title and text: PostgreSQL tsvector + GIN, icontains on SQLite."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import Q
from django.db.models.expressions import RawSQL

from projects.documents.models import Article

SEARCH_CONFIG = "english"
SEARCH_INDEX_NAME = "article_fts_idx"


def article_document() -> SearchVector:
    return SearchVector("title", "text", config=SEARCH_CONFIG)


def article_search_index() -> GinIndex:
    # Migrations import this: keep the expression stable, or add a migration rebuilding the index.
    return GinIndex(article_document(), name=SEARCH_INDEX_NAME)


def task_search_q(query: str) -> Q:
    """Tasks whose article matches ``query`` (web-search syntax on PostgreSQL: words, "phrases", -word, or)."""
    if settings.IS_POSTGRES:
        # Filtering on the same expression the index was built from lets the planner use it.
        matching = (
            Article.objects.alias(document=article_document())
            .filter(document=SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG))
            .values("pk")
        )
        sql, params = matching.query.sql_with_params()
        # OFFSET 0 keeps PostgreSQL from flattening the subquery into a join. Flattened, under the
        # page's LIMIT the planner walks tasks in list order and recomputes to_tsvector for each
        # row (18 s for a rare word on 1,000,000 articles); kept apart, the subquery runs once off
        # the GIN index and each task is checked against its result (6 ms).
        return Q(article_id__in=RawSQL(f"{sql} OFFSET 0", params))
    return Q(article__title__icontains=query) | Q(article__text__icontains=query)
