"""A GIN index for the task manager's full-text search over article title and text (PostgreSQL).

The index is built from the very expression ``projects.assignment.search.article_document()``
uses in queries, so the planner matches them. It lives here, with the task manager that queries
it, rather than in Article's Meta: SQLite has no GIN index and searches with icontains instead.
"""

from django.db import migrations

from projects.assignment.search import SEARCH_INDEX_NAME, article_search_index


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    Article = apps.get_model("documents", "Article")
    schema_editor.add_index(Article, article_search_index())


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'DROP INDEX IF EXISTS "{SEARCH_INDEX_NAME}"')


class Migration(migrations.Migration):
    dependencies = [
        ("assignment", "0002_queue_counters_and_flags"),
        ("documents", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_index, drop_index)]
