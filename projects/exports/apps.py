from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _forget_webhooks(sender, instance, **kwargs) -> None:
    from projects.core.memo import project_memo_forget
    from projects.exports.selectors import WEBHOOK_MEMO

    project_memo_forget(WEBHOOK_MEMO, instance.project_id)


class ExportsConfig(AppConfig):
    name = "projects.exports"
    label = "exports"

    def ready(self) -> None:
        from projects.core import events
        from projects.exports.models import Webhook
        from projects.exports.selectors import WEBHOOK_MEMO
        from projects.exports.webhooks import webhook_dispatch

        events.subscribe(webhook_dispatch, memos=(WEBHOOK_MEMO,))
        # Every domain event reads the project's webhooks from a memo; a change drops it.
        post_save.connect(_forget_webhooks, sender=Webhook, dispatch_uid="exports-forget-webhooks")
        post_delete.connect(_forget_webhooks, sender=Webhook, dispatch_uid="exports-forget-webhooks-delete")
