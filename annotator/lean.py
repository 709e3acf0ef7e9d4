"""A lean POST for the API's two hottest endpoints (next-task and submit).

Annotators call them in a loop, and DRF's per-request machinery (a ``Request`` wrapper,
parser/authenticator/renderer instances, content negotiation, permission classes, a
``Response`` rendered through the template-response protocol) cost about as much Python CPU as
the work itself. ``LeanPostView`` is an ``APIView`` (the schema, ``OPTIONS``, ``GET`` and every
unusual request still go through DRF) whose ``as_view()`` answers the plain case directly: a
``POST`` with no query string, ``Accept`` absent, ``*/*`` or ``application/json``, and a body
that is empty or ``application/json``. The plain case does what DRF would do for these views,
in the same order, with the same classes where they decide anything:

- authentication: the token (``projects.core.auth.token_authenticate``: rate limit, revocation,
  expiry, inactive user, scope) or else the session user, whose request must pass DRF's
  ``CSRFCheck`` (as ``SessionAuthentication`` does, reading the body first where it would);
  nobody → 401 with ``WWW-Authenticate: Token``;
- the body through the project's ``JSONParser`` (same errors), only if the view reads it;
- errors through ``annotator.api.exception_handler`` and DRF's ``JSONRenderer``;
  database errors are re-raised for ``DatabaseUnavailableMiddleware``;
- the same ``Allow`` and ``Vary: Accept`` headers, and bytes from the same ``JSONRenderer``.

Middleware runs as for any view. A view provides ``lean_post_response(request, data, **kwargs)
-> (data, status)``, which its DRF ``post`` calls too.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.cache import patch_vary_headers
from rest_framework import exceptions
from rest_framework.authentication import CSRFCheck
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from annotator.api import exception_handler
from annotator.parsers import JSONParser
from projects.core.auth import TokenAuthentication, token_authenticate

_RENDERER = JSONRenderer()
_PARSER = JSONParser()
_PLAIN_ACCEPT = frozenset(("", "*/*", "application/json"))
_NO_BODY = object()


def _content_length(meta: dict) -> int:
    """The body's length as DRF's ``Request`` reads it (0: no body to parse)."""
    try:
        return int(meta.get("CONTENT_LENGTH", meta.get("HTTP_CONTENT_LENGTH", 0)))
    except (ValueError, TypeError):
        return 0


def _plain(request: HttpRequest) -> bool:
    """The requests the lean path answers exactly as DRF would (everything else goes to DRF)."""
    meta = request.META
    if request.method != "POST" or meta.get("QUERY_STRING") or meta.get("HTTP_ACCEPT", "") not in _PLAIN_ACCEPT:
        return False
    content_type = meta.get("CONTENT_TYPE", "")
    if content_type != "application/json" and (content_type or _content_length(meta)):
        return False
    # Tests' force_authenticate() is DRF's own business (its test client sets both, to None when unused).
    return getattr(request, "_force_auth_user", None) is None and getattr(request, "_force_auth_token", None) is None


class _Body:
    """The request body, parsed at most once, as DRF's ``Request.data`` parses it."""

    __slots__ = ("request", "value")

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.value: Any = _NO_BODY

    def data(self) -> Any:
        if self.value is _NO_BODY:
            meta = self.request.META
            if not _content_length(meta):
                self.value = {}
            else:
                self.value = _PARSER.parse(self.request, "application/json", {})
        return self.value


class _CsrfRequest:
    """The request as ``CsrfViewMiddleware`` sees it under ``SessionAuthentication``: DRF hands
    it the DRF request, whose ``POST`` parses the body first (a malformed body answers 400
    before a wrong CSRF token answers 403)."""

    def __init__(self, request: HttpRequest, body: _Body) -> None:
        self._request = request
        self._body = body

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)

    @property
    def POST(self) -> QueryDict:  # noqa: N802 - HttpRequest's name
        self._body.data()
        return QueryDict()


def _session_user(request: HttpRequest, body: _Body):
    """``SessionAuthentication.authenticate``: the signed-in user, CSRF checked, or None."""
    user = getattr(request, "user", None)
    if not user or not user.is_active:
        return None
    check = CSRFCheck(lambda _request: None)
    csrf_request = _CsrfRequest(request, body)
    check.process_request(csrf_request)
    reason = check.process_view(csrf_request, None, (), {})
    if reason:
        raise exceptions.PermissionDenied(f"CSRF Failed: {reason}")
    return user


class LeanPostView(APIView):
    """An ``APIView`` whose plain ``POST`` requests skip DRF's dispatch (see the module)."""

    # Whether ``lean_post_response`` gets the parsed body (submit) or None (next-task, whose
    # body DRF never parses for a token request).
    lean_reads_body = False

    def lean_post_response(self, request, data: Any, **kwargs) -> tuple[Any, int]:
        raise NotImplementedError

    @classmethod
    def as_view(cls, **initkwargs):
        drf_view = super().as_view(**initkwargs)
        probe = cls(**initkwargs)
        probe.setup(None)  # as dispatch does: HEAD answers where GET does
        allow = ", ".join(probe._allowed_methods())

        def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not _plain(request):
                return drf_view(request, *args, **kwargs)
            return cls(**initkwargs)._lean_post(request, kwargs, allow)

        functools.update_wrapper(view, drf_view)  # cls, initkwargs (the schema), csrf_exempt
        return view

    def _lean_post(self, request: HttpRequest, kwargs: dict, allow: str) -> HttpResponse:
        self.request, self.args, self.kwargs = request, (), kwargs
        body = _Body(request)
        try:
            found = token_authenticate(request, self)
            if found is None:
                user = _session_user(request, body)
                if user is None:
                    raise exceptions.NotAuthenticated()
                request.user, request.auth = user, None
            else:
                request.user, request.auth = found
            data, status = self.lean_post_response(request, body.data() if self.lean_reads_body else None, **kwargs)
            response = HttpResponse(_RENDERER.render(data), status=status, content_type="application/json")
        except Exception as exc:  # noqa: BLE001 - DRF's handle_exception: the handler decides, else re-raised
            if not hasattr(request, "auth"):
                request.user, request.auth = AnonymousUser(), None
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                exc.auth_header = TokenAuthentication.keyword
            response = exception_handler(exc, {"view": self, "args": (), "kwargs": kwargs, "request": request})
            if response is None:
                raise
            response.exception = True
            response.accepted_renderer, response.accepted_media_type = _RENDERER, _RENDERER.media_type
            response.renderer_context = {"view": self, "args": (), "kwargs": kwargs, "request": request}
        patch_vary_headers(response, ("Accept",))
        response["Allow"] = allow
        return response
