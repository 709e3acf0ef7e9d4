from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _forget_retrain(sender, instance, **kwargs) -> None:
    from projects.core.memo import project_memo_forget
    from projects.prelabel.training import RETRAIN_MEMO

    project_memo_forget(RETRAIN_MEMO, instance.project_id)


class PrelabelConfig(AppConfig):
    name = "projects.prelabel"
    label = "prelabel"
    verbose_name = "Pre-labeling"

    def ready(self) -> None:
        from projects.core import events
        from projects.prelabel.models import Labeler
        from projects.prelabel.training import RETRAIN_MEMO, retrain_on_submissions

        events.subscribe(retrain_on_submissions, memos=(RETRAIN_MEMO,))
        # Every submission reads which labelers retrain from a memo; a change drops it.
        post_save.connect(_forget_retrain, sender=Labeler, dispatch_uid="prelabel-forget-retrain")
        post_delete.connect(_forget_retrain, sender=Labeler, dispatch_uid="prelabel-forget-retrain-delete")
