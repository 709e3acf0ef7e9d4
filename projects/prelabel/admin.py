from django.contrib import admin

from projects.prelabel.models import Prediction


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "task", "model_version", "score", "created_at")
    raw_id_fields = ("project", "task")
