from django.apps import AppConfig


class PrelabelConfig(AppConfig):
    name = "projects.prelabel"
    label = "prelabel"
