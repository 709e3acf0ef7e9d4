from django.contrib import admin

from projects.annotations.models import Annotation, Comment, Review


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "task", "user", "status", "review_state", "submitted_at")
    list_filter = ("status", "review_state")
    raw_id_fields = ("project", "task", "user", "prediction")


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("id", "annotation", "reviewer", "verdict", "created_at")
    raw_id_fields = ("annotation", "reviewer")


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "user", "is_resolved", "created_at")
    raw_id_fields = ("task", "user")
