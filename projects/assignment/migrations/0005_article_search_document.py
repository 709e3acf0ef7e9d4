"""Full-text search reads a stored ``documents_article.search_document`` tsvector (PostgreSQL).

The expression GIN index of 0003 computed ``to_tsvector`` inside every article INSERT (about a
millisecond each), the main cost of imports. This migration drops it, adds the column (not a model
field: ORM reads of articles never load the document, which is larger than the text), indexes it
(GIN) and the rows still to be indexed (partial btree), and fills it for existing rows.
"""

from django.db import migrations

from projects.assignment.search import DOCUMENT_INDEX_NAME, DOCUMENT_SQL, PENDING_INDEX_NAME, SEARCH_INDEX_NAME

FORWARD = [
    "ALTER TABLE documents_article ADD COLUMN IF NOT EXISTS search_document tsvector",
    f'DROP INDEX IF EXISTS "{SEARCH_INDEX_NAME}"',
    f'CREATE INDEX IF NOT EXISTS "{DOCUMENT_INDEX_NAME}" ON documents_article USING gin (search_document)',
    f'CREATE INDEX IF NOT EXISTS "{PENDING_INDEX_NAME}" ON documents_article (project_id, id) '
    "WHERE search_document IS NULL",
    f"UPDATE documents_article SET search_document = {DOCUMENT_SQL} WHERE search_document IS NULL",
]
BACKWARD = [
    f'DROP INDEX IF EXISTS "{PENDING_INDEX_NAME}"',
    f'DROP INDEX IF EXISTS "{DOCUMENT_INDEX_NAME}"',
    "ALTER TABLE documents_article DROP COLUMN IF EXISTS search_document",
    f'CREATE INDEX IF NOT EXISTS "{SEARCH_INDEX_NAME}" ON documents_article USING gin ({DOCUMENT_SQL})',
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
        ("documents", "0001_initial"),
    ]

    operations = [migrations.RunPython(forward, backward)]
