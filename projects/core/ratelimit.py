"""Failed-login limits: web and admin sign-ins (per username and per client address) and API
token failures (per client address).

A small fixed-window counter in Django's cache (Redis when ``REDIS_URL`` is set, so all gunicorn
workers share it; per-process memory otherwise). We use this rather than django-axes because we
need two counters, not an attempt log with its own tables, backend and middleware, and because
axes does not see DRF token failures.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.dispatch import receiver

from annotator.db import MAX_ID, ModelColumns, hot_cursor

logger = logging.getLogger(__name__)


def client_ip(request) -> str:
    """The client address; behind our TLS proxy, the address that proxy appended last."""
    if request is None:
        return "unknown"
    meta = getattr(request, "META", {})
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if settings.SECURE_PROXY_SSL_HEADER and forwarded:
        return forwarded.split(",")[-1].strip()
    return meta.get("REMOTE_ADDR", "unknown")


def _key(scope: str, ident: str) -> tuple[str, str]:
    digest = hashlib.sha256(ident.strip().lower().encode()).hexdigest()[:32]
    window = int(time.time() // settings.LOGIN_FAILURE_WINDOW_SECONDS)
    return f"ratelimit:{scope}:{digest}:{window}", f"ratelimit:{scope}:{digest}"


def failures(scope: str, ident: str) -> int:
    try:
        return cache.get(_key(scope, ident)[0], 0)
    except Exception as exc:  # noqa: BLE001 - the cache (Redis) is down: see _cache_down
        return _cache_down(exc)


def record_failure(scope: str, ident: str) -> int:
    key, _ = _key(scope, ident)
    try:
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
            return 1
    except Exception as exc:  # noqa: BLE001
        return _cache_down(exc)


def reset(scope: str, ident: str) -> None:
    try:
        cache.delete(_key(scope, ident)[0])
    except Exception as exc:  # noqa: BLE001
        _cache_down(exc)


def _cache_down(exc: Exception) -> int:
    """While Redis is unreachable the limits are not enforced (fail open): signing in and every
    token request keep working, and the outage is logged. Counting resumes when Redis is back."""
    logger.warning("rate-limit counters unavailable (%s: %s); not enforcing limits", type(exc).__name__, exc)
    return 0


def retry_after_seconds() -> int:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    return max(1, math.ceil(window - time.time() % window))


def login_blocked(request, username: str | None) -> bool:
    if failures("login-ip", client_ip(request)) >= settings.LOGIN_FAILURES_PER_IP:
        return True
    return bool(username) and failures("login-user", username) >= settings.LOGIN_FAILURES_PER_USERNAME


# Every API request asks whether its address is blocked, and the answer is nearly always no. Each
# process remembers an address it found under the limit for TOKEN_CLEAR_SECONDS and asks the
# cache again only after that, or at once after a failure of its own from that address: the
# request after any failure in this process is checked. What a block found by other processes
# lets through meanwhile is, per process, at most TOKEN_CLEAR_SECONDS of requests from that
# address, of which at most one unchecked guess per request that succeeded. This saves one cache
# round trip (about 0.1 ms of CPU) on almost every API request.
TOKEN_CLEAR_SECONDS = 1.0
_MAX_REMEMBERED = 10_000  # addresses; the memory is emptied when it reaches this
_token_clear_until: dict[str, float] = {}  # address -> time.monotonic() deadline


def token_blocked(request) -> bool:
    ip = client_ip(request)
    now = time.monotonic()
    if _token_clear_until.get(ip, 0.0) > now:
        return False
    blocked = failures("token-ip", ip) >= settings.TOKEN_FAILURES_PER_IP
    if blocked:
        _token_clear_until.pop(ip, None)
    else:
        if len(_token_clear_until) >= _MAX_REMEMBERED:
            _token_clear_until.clear()
        _token_clear_until[ip] = now + TOKEN_CLEAR_SECONDS
    return blocked


def record_token_failure(request) -> int:
    """Count a failed token request from the request's address (and forget it was clear)."""
    ip = client_ip(request)
    _token_clear_until.pop(ip, None)
    return record_failure("token-ip", ip)


def forget_token_clearances() -> None:
    """Drop what this process remembers of addresses under the token limit (tests)."""
    _token_clear_until.clear()


class RateLimitedModelBackend(ModelBackend):
    """ModelBackend that refuses to check passwords while the username or address is locked out.

    It applies to every password sign-in (our login page and the admin's), because both go
    through ``django.contrib.auth.authenticate``.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if login_blocked(request, username or kwargs.get("email")):
            raise PermissionDenied("too many failed sign-ins")
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id):
        """The signed-in user of a session, as ``ModelBackend.get_user`` loads it, with one
        composed, prepared statement: every request of a signed-in browser runs it, and the ORM's
        ``get()`` cost 0.38 ms of CPU to build against under 0.1 ms to run."""
        user_model = get_user_model()
        if user_model._meta.pk.get_internal_type() not in ("AutoField", "BigAutoField"):
            return super().get_user(user_id)
        try:
            user_id = int(user_id)
        except (TypeError, ValueError):
            return None
        if not 0 < user_id <= MAX_ID:
            return None
        columns, sql = _user_read(user_model)
        with hot_cursor() as cursor:
            cursor.execute(sql, {"id": user_id})
            row = cursor.fetchone()
        if row is None:
            return None
        user = columns.build(connection, row)
        return user if self.user_can_authenticate(user) else None


@functools.cache
def _user_read(user_model) -> tuple[ModelColumns, str]:
    columns = ModelColumns(user_model, "u")
    qn = connection.ops.quote_name
    pk = qn(user_model._meta.pk.column)
    return columns, f"SELECT {columns.select(connection)} FROM {qn(user_model._meta.db_table)} u WHERE u.{pk} = %(id)s"


@receiver(user_login_failed)
def _count_failed_login(sender, credentials, request=None, **kwargs) -> None:
    record_failure("login-ip", client_ip(request))
    username = credentials.get("username")
    if username:
        record_failure("login-user", username)


@receiver(user_logged_in)
def _forget_failures_on_success(sender, request, user, **kwargs) -> None:
    # Only the username's counter: signing in to one's own account must not reset an address
    # that is guessing other people's passwords.
    reset("login-user", user.get_username())
