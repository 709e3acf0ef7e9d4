"""Full-text search reads ``Article.search_document`` instead of an expression index (PostgreSQL).

The expression GIN index of 0003 computed ``to_tsvector`` inside every article INSERT (about a
millisecond each), the main cost of imports. This migration drops it, indexes the stored column
(GIN) and the rows still to be indexed (partial btree), and fills the column for existing rows.
"""

from django.db import migrations

from projects.assignment.search import DOCUMENT_INDEX_NAME, PENDING_INDEX_NAME, SEARCH_INDEX_NAME

FORWARD = [
    f'DROP INDEX IF EXISTS "{SEARCH_INDEX_NAME}"',
    f'CREATE INDEX IF NOT EXISTS "{DOCUMENT_INDEX_NAME}" ON documents_article USING gin (search_document)',
    f'CREATE INDEX IF NOT EXISTS "{PENDING_INDEX_NAME}" ON documents_article (project_id, id) '
    "WHERE search_document IS NULL",
    "UPDATE documents_article SET search_document = to_tsvector('english'::regconfig, "
    "COALESCE(title, '') || ' ' || COALESCE(text, '')) WHERE search_document IS NULL",
]
BACKWARD = [
    f'DROP INDEX IF EXISTS "{PENDING_INDEX_NAME}"',
    f'DROP INDEX IF EXISTS "{DOCUMENT_INDEX_NAME}"',
    f'CREATE INDEX IF NOT EXISTS "{SEARCH_INDEX_NAME}" ON documents_article USING gin '
    "(to_tsvector('english'::regconfig, COALESCE(title, '') || ' ' || COALESCE(text, '')))",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in FORWARD:
            schema_editor.execute(sql)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in BACKWARD:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("assignment", "0004_task_manager_indexes"),
        ("documents", "0002_article_search_document"),
    ]

    operations = [migrations.RunPython(forward, backward)]
