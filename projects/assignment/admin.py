from django.contrib import admin

from projects.assignment.models import Assignment, Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "project",
        "article",
        "segment_index",
        "priority",
        "required_skill",
        "is_gold",
        "submitted_count",
        "is_complete",
    )
    list_filter = ("is_gold", "is_complete", "is_flagged")
    raw_id_fields = ("project", "article")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "task", "user", "status", "expires_at")
    list_filter = ("status",)
    raw_id_fields = ("project", "task", "user", "assigned_by")
