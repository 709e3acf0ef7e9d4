"""Domain events: lower apps announce what happened; higher apps (webhooks, metrics) listen.

``emit`` is called inside a service's transaction and delivers to subscribers only after the
commit, so a rolled-back write announces nothing. Subscribers register in their AppConfig.ready()
with ``subscribe(handler)``; a handler takes ``(name, project_id, data)`` and should only enqueue
work (a Celery job), never do slow I/O inline.

Event names: ``annotation.submitted``, ``annotation.reviewed``, ``task.completed``, ``task.adjudicated``,
``export.ready``, ``import.finished``, ``prelabel.finished``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from projects.core import memo

logger = logging.getLogger(__name__)

Handler = Callable[[str, int, dict], None]
_handlers: list[Handler] = []
_memos: list[str] = []  # the per-project memos the handlers read, fetched together per delivery


def subscribe(handler: Handler, *, memos: tuple[str, ...] = ()) -> None:
    """``memos``: the names of the ``projects.core.memo`` entries the handler reads."""
    if handler not in _handlers:
        _handlers.append(handler)
    _memos.extend(name for name in memos if name not in _memos)


def emit(name: str, *, project_id: int, data: dict) -> None:
    emit_all([(name, data)], project_id=project_id)


def emit_all(events: list[tuple[str, dict]], *, project_id: int) -> None:
    """Announce several events of one project at once (a submission that completes its task):
    listeners get them in order, after the commit, in one callback, so the per-project facts
    they read (``projects.core.memo``) are fetched once for all of them, in one cache round trip."""

    def deliver() -> None:
        with memo.scope(project_id, prefetch=_memos):
            for name, data in events:
                for handler in list(_handlers):
                    try:
                        handler(name, project_id, data)
                    except Exception:  # a listener's failure must not undo or block the committed write
                        logger.exception("event handler %r failed for %s", handler, name)

    transaction.on_commit(deliver)
