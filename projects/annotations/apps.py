from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "projects.annotations"
    label = "annotations"
