from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "projects.quality"
    label = "quality"

    def ready(self) -> None:
        from projects.core import events
        from projects.quality.jobs import on_event

        events.subscribe(on_event)
