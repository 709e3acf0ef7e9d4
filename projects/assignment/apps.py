from django.apps import AppConfig


class AssignmentConfig(AppConfig):
    name = "projects.assignment"
    label = "assignment"
