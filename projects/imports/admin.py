from django.contrib import admin

from projects.imports.models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "status", "format", "file_name", "rows_read", "rows_created", "rows_failed")
    list_filter = ("status", "format")
    search_fields = ("file_name",)
    readonly_fields = [f.name for f in ImportJob._meta.fields]
