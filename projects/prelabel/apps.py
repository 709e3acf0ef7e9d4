from django.apps import AppConfig


class PrelabelConfig(AppConfig):
    name = "projects.prelabel"
    label = "prelabel"
    verbose_name = "Pre-labeling"

    def ready(self) -> None:
        from projects.core import events
        from projects.prelabel.training import retrain_on_submissions

        events.subscribe(retrain_on_submissions)
