from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "projects.quality"
    label = "quality"
