from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "projects.core"
    label = "projects"
    verbose_name = "Projects"
