# Drops the single-column index of Article.project: the unique article_external_id_unique
# (project_id, external_id) starts with the same column and serves every lookup by it, cascades
# included. Only the index goes: the foreign key stays as it is (a plain AlterField would drop and
# re-add it, re-checking every row).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('documents', '0001_initial'),
        ('projects', '0002_pending_jobs'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "documents_article_project_id_d230aede"',
                    reverse_sql='CREATE INDEX IF NOT EXISTS "documents_article_project_id_d230aede" '
                    'ON "documents_article" ("project_id")',
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='article',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='articles', to='projects.project'),
                ),
            ],
        ),
    ]
