"""API token authentication: ``Authorization: Token <key>``, keys stored only as SHA-256."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from projects.core import ratelimit
from projects.core.models import ApiToken, hash_token
from projects.core.permissions import token_scope_refusal

# last_used_at is informational; writing it on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
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
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(key)).first()
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
        refusal = token_scope_refusal(token, request.method, (request.parser_context or {}).get("view"))
        if refusal:
            raise exceptions.PermissionDenied(refusal)
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

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
