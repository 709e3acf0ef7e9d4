from django.contrib import admin

from projects.documents.models import Article


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "external_id", "title", "domain", "created_at")
    search_fields = ("external_id", "title")
    list_filter = ("domain",)
    raw_id_fields = ("project",)
