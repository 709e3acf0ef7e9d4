from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "projects.imports"
    label = "imports"
    verbose_name = "Imports"
