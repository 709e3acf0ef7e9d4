from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "projects.web"
    label = "web"
