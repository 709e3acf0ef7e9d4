from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "projects.core"
    label = "projects"
    verbose_name = "Projects"

    def ready(self) -> None:
        from projects.core import ratelimit  # noqa: F401  (connects the failed-login counter)
