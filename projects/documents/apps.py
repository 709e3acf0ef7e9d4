from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "projects.documents"
    label = "documents"
