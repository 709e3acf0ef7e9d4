from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "projects.exports"
    label = "exports"

    def ready(self) -> None:
        from projects.core import events
        from projects.exports.webhooks import webhook_dispatch

        events.subscribe(webhook_dispatch)
