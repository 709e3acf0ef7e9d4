"""API token authentication: ``Authorization: Token <key>``, keys stored only as SHA-256.

Every API request pays for this, so the token and its user are read with one hand-written
statement (no ORM query building; prepared once per connection, ``annotator.db``) that also
compares the token's dates, and built with ``Model.from_db``. Nothing is cached between
requests: a revoked or expired token, or a deactivated user, is refused on the very next request.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import HTTP_HEADER_ENCODING, authentication, exceptions

from annotator.db import hot_cursor
from projects.core import ratelimit
from projects.core.models import ApiToken, hash_token
from projects.core.permissions import token_scope_refusal

# last_used_at is informational; writing it on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


# What a request needs of the token (``request.auth.scope``) and of the user; the token's dates
# are compared in the statement, so only booleans come back. The other fields are deferred:
# reading one (say ``request.user.last_login``) costs a query.
_TOKEN_FIELDS = ("id", "user_id", "scope")
_USER_DEFERRED = ("password", "last_login", "date_joined")


class TokenLookup(NamedTuple):
    token: ApiToken  # its id, user_id and scope, with ``token.user`` loaded
    revoked: bool
    expired: bool
    last_used_stale: bool  # last_used_at unset or older than LAST_USED_RESOLUTION


@functools.cache
def _token_query() -> tuple[str, type[AbstractBaseUser], tuple[str, ...]]:
    """``SELECT`` the token's fields, its three checks and its user's fields by key hash; the
    user model and its field list."""
    user_model = get_user_model()
    user_fields = tuple(f.attname for f in user_model._meta.concrete_fields if f.attname not in _USER_DEFERRED)
    qn = connection.ops.quote_name
    columns = [
        *(f"t.{qn(name)}" for name in _TOKEN_FIELDS),
        f"t.{qn('revoked_at')} IS NOT NULL",
        f"t.{qn('expires_at')} IS NOT NULL AND t.{qn('expires_at')} <= %s",
        f"t.{qn('last_used_at')} IS NULL OR t.{qn('last_used_at')} < %s",
        *(f"u.{qn(user_model._meta.get_field(name).column)}" for name in user_fields),
    ]
    sql = (
        f"SELECT {', '.join(columns)} FROM {qn(ApiToken._meta.db_table)} t "
        f"JOIN {qn(user_model._meta.db_table)} u ON u.{qn(user_model._meta.pk.column)} = t.{qn('user_id')} "
        f"WHERE t.{qn('key_hash')} = %s"
    )
    return sql, user_model, user_fields


def token_lookup(key: str, *, now: datetime) -> TokenLookup | None:
    """The token whose key is ``key``, with ``token.user`` loaded and its checks at ``now``, or None.

    One statement; the dates are compared there so that no datetime is read and converted.
    """
    sql, user_model, user_fields = _token_query()
    adapt = connection.ops.adapt_datetimefield_value  # SQLite compares the text it stores
    with hot_cursor() as cursor:
        cursor.execute(sql, [adapt(now), adapt(now - LAST_USED_RESOLUTION), hash_token(key)])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(_TOKEN_FIELDS)
    token = ApiToken.from_db(DEFAULT_DB_ALIAS, _TOKEN_FIELDS, row[:split])
    token.user = user_model.from_db(DEFAULT_DB_ALIAS, user_fields, row[split + 3 :])
    return TokenLookup(token, bool(row[split]), bool(row[split + 1]), bool(row[split + 2]))


def token_authenticate(request, view) -> tuple[AbstractBaseUser, ApiToken] | None:
    """``(user, token)`` for a request with ``Authorization: Token <key>`` (or ``Bearer``), None
    without one; ``AuthenticationFailed``, ``Throttled`` or ``PermissionDenied`` (scope) otherwise.

    ``request`` is DRF's or Django's own (``annotator.lean``); ``view`` declares what the scopes allow.
    """
    # DRF's get_authorization_header() reads it through request.headers, which builds a mapping
    # of every header first.
    header = request.META.get("HTTP_AUTHORIZATION", "").encode(HTTP_HEADER_ENCODING).split()
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
    now = timezone.now()
    found = token_lookup(key, now=now)
    if found is None or found.revoked:
        ratelimit.record_token_failure(request)
        raise exceptions.AuthenticationFailed("Invalid or revoked token.")
    token = found.token
    if found.expired:
        raise exceptions.AuthenticationFailed("This token has expired.")
    if not token.user.is_active:
        raise exceptions.AuthenticationFailed("This user is inactive.")
    # Scopes are enforced here, for every API view, so a view that forgets to check cannot let
    # a read-only token write (e.g. mint itself a full-scope token).
    refusal = token_scope_refusal(token, request.method, view)
    if refusal:
        raise exceptions.PermissionDenied(refusal)
    if found.last_used_stale:
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
