"""API token authentication: ``Authorization: Token <key>``, keys stored only as SHA-256.

Every API request pays for this, so the token and its user are read with one hand-written
statement (no ORM query building; prepared once per connection, ``annotator.db``) and built with
``Model.from_db``. Nothing is cached between
requests: a revoked or expired token, or a deactivated user, is refused on the very next request.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from annotator.db import hot_cursor
from projects.core import ratelimit
from projects.core.models import ApiToken, hash_token
from projects.core.permissions import token_scope_refusal

# last_used_at is informational; writing it on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


# What a request needs of the token (its checks, and ``request.auth.scope``) and of the user. The
# other fields are deferred: reading one (say ``request.user.last_login``) costs a query.
_TOKEN_FIELDS = ("id", "user_id", "scope", "last_used_at", "expires_at", "revoked_at")
_USER_DEFERRED = ("password", "last_login", "date_joined")


@functools.cache
def _token_query() -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``SELECT`` the token's and its user's fields by key hash, and the two field lists."""
    user_model = get_user_model()
    user_fields = tuple(f.attname for f in user_model._meta.concrete_fields if f.attname not in _USER_DEFERRED)
    qn = connection.ops.quote_name
    columns = [f"t.{qn(name)}" for name in _TOKEN_FIELDS] + [
        f"u.{qn(user_model._meta.get_field(name).column)}" for name in user_fields
    ]
    sql = (
        f"SELECT {', '.join(columns)} FROM {qn(ApiToken._meta.db_table)} t "
        f"JOIN {qn(user_model._meta.db_table)} u ON u.{qn(user_model._meta.pk.column)} = t.{qn('user_id')} "
        f"WHERE t.{qn('key_hash')} = %s"
    )
    return sql, _TOKEN_FIELDS, user_fields


def _aware(value):
    # SQLite hands raw queries naive UTC datetimes (the ORM would make them aware itself).
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def token_with_user(key: str) -> ApiToken | None:
    """The token whose key is ``key``, with ``token.user`` loaded, or None."""
    sql, token_fields, user_fields = _token_query()
    with hot_cursor() as cursor:
        cursor.execute(sql, [hash_token(key)])
        row = cursor.fetchone()
    if row is None:
        return None
    if not settings.IS_POSTGRES:
        row = [_aware(v) for v in row]
    split = len(token_fields)
    token = ApiToken.from_db(connection.alias, token_fields, row[:split])
    token.user = get_user_model().from_db(connection.alias, user_fields, row[split:])
    return token


def token_authenticate(request, view) -> tuple[AbstractBaseUser, ApiToken] | None:
    """``(user, token)`` for a request with ``Authorization: Token <key>`` (or ``Bearer``), None
    without one; ``AuthenticationFailed``, ``Throttled`` or ``PermissionDenied`` (scope) otherwise.

    ``request`` is DRF's or Django's own (``annotator.lean``); ``view`` declares what the scopes allow.
    """
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].lower() not in (b"token", b"bearer"):
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed("Invalid token header: expected 'Authorization: Token <key>'.")
    try:
        key = header[1].decode()
    except UnicodeError as exc:
        raise exceptions.AuthenticationFailed("Invalid token header: the key has invalid characters.") from exc
    if ratelimit.token_blocked(request):
        raise exceptions.Throttled(
            wait=ratelimit.retry_after_seconds(), detail="Too many requests with invalid tokens from this address."
        )
    token = token_with_user(key)
    now = timezone.now()
    if token is None or token.revoked_at is not None:
        ratelimit.record_failure("token-ip", ratelimit.client_ip(request))
        raise exceptions.AuthenticationFailed("Invalid or revoked token.")
    if token.expires_at is not None and token.expires_at <= now:
        raise exceptions.AuthenticationFailed("This token has expired.")
    if not token.user.is_active:
        raise exceptions.AuthenticationFailed("This user is inactive.")
    # Scopes are enforced here, for every API view, so a view that forgets to check cannot let
    # a read-only token write (e.g. mint itself a full-scope token).
    refusal = token_scope_refusal(token, request.method, view)
    if refusal:
        raise exceptions.PermissionDenied(refusal)
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        return token_authenticate(request, (request.parser_context or {}).get("view"))

    def authenticate_header(self, request) -> str:
        return self.keyword


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "projects.core.auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Token-based authentication: `Token <key>`.",
        }
