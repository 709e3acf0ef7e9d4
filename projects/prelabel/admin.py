from django.contrib import admin

from projects.prelabel.models import Labeler, Prediction, PrelabelRun, TrainedModel


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "task", "model_version", "score", "margin", "created_at")
    raw_id_fields = ("project", "task")


@admin.register(Labeler)
class LabelerAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "name", "kind", "is_active", "updated_at")
    raw_id_fields = ("project", "created_by")


@admin.register(TrainedModel)
class TrainedModelAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "version", "annotation_count", "created_at")
    raw_id_fields = ("project", "created_by")
    readonly_fields = ("path", "sha256")


@admin.register(PrelabelRun)
class PrelabelRunAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "labeler_name", "model_version", "status", "total", "done", "failed", "created_at")
    raw_id_fields = ("project", "labeler", "created_by")
