# Drops the single-column indexes of Task.project and Task.article: task_project_id_idx
# (project_id, id) and the unique task_segment_unique (article_id, segment_index) start with the
# same column and serve every lookup by it, cascades included. Only the indexes go: the foreign
# keys stay as they are (a plain AlterField would drop and re-add them, re-checking every row).

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "assignment_task_article_id_786f7879": "article_id",
    "assignment_task_project_id_d7f5eb0f": "project_id",
}


class Migration(migrations.Migration):

    dependencies = [
        ('assignment', '0006_add_task_manager_indexes'),
        ('documents', '0001_initial'),
        ('projects', '0002_pending_jobs'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "assignment_task" ("{column}")',
                )
                for name, column in INDEXES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='task',
                    name='article',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='tasks', to='documents.article'),
                ),
                migrations.AlterField(
                    model_name='task',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='tasks', to='projects.project'),
                ),
            ],
        ),
    ]
