from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "projects.exports"
    label = "exports"
