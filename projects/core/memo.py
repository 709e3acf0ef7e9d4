"""Per-project facts that every submission's event handlers need and that rarely change (which
webhooks listen, which labelers retrain), kept in Django's cache (Redis when ``REDIS_URL`` is set,
shared by all workers) so a submission does not pay a query per handler.

The owner of the rows drops the entry whenever one of them is saved or deleted (a
``post_save``/``post_delete`` receiver, so admin edits and cascades count too); the TTL only
bounds the damage of a lost invalidation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.core.cache import cache

logger = logging.getLogger(__name__)
T = TypeVar("T")
TTL_SECONDS = 300
_scope = threading.local()


def _key(name: str, project_id: int) -> str:
    return f"memo:{name}:{project_id}"


@contextmanager
def scope(project_id: int | None = None, prefetch: Iterable[str] = ()) -> Iterator[None]:
    """Inside this block each memo is fetched from the cache at most once (the event listeners of
    one commit share what they read). The ``prefetch`` memos of ``project_id`` are fetched at the
    start, together (one cache round trip); those missing are computed when first asked for."""
    outer = getattr(_scope, "values", None)
    if outer is None:
        _scope.values = _fetch(project_id, prefetch) if project_id is not None and prefetch else {}
    try:
        yield
    finally:
        if outer is None:
            _scope.values = None


def _fetch(project_id: int, names: Iterable[str]) -> dict[str, object]:
    try:
        return cache.get_many([_key(name, project_id) for name in names])
    except Exception:
        logger.warning("memo cache unreachable; nothing prefetched for project %s", project_id)
        return {}


def project_memo(name: str, project_id: int, compute: Callable[[], T]) -> T:
    """The cached value of ``compute()`` for this project (computed and stored when missing).

    Fails open: with the cache unreachable (Redis down) the value is computed every time, so
    events still reach webhooks and retraining.
    """
    key = _key(name, project_id)
    local = getattr(_scope, "values", None)
    if local is not None and key in local:
        return local[key]
    value = _project_memo(key, name, project_id, compute)
    if local is not None:
        local[key] = value
    return value


def _project_memo(key: str, name: str, project_id: int, compute: Callable[[], T]) -> T:
    try:
        value = cache.get(key)
    except Exception:
        logger.warning("memo cache unreachable; computing %s for project %s", name, project_id)
        return compute()
    if value is None:
        value = compute()
        try:
            cache.set(key, value, TTL_SECONDS)
        except Exception:
            logger.warning("memo cache unreachable; %s for project %s not stored", name, project_id)
    return value


def project_memo_forget(name: str, project_id: int) -> None:
    key = _key(name, project_id)
    local = getattr(_scope, "values", None)
    if local is not None:
        local.pop(key, None)
    try:
        cache.delete(key)
    except Exception:
        # The entry, if the cache comes back with it, expires within TTL_SECONDS.
        logger.warning("memo cache unreachable; %s for project %s not dropped", name, project_id)
