"""Response headers every page gets: the Content Security Policy.

Django 5.2 has no CSP support of its own. The policy allows scripts, styles, images and
connections from our own origin only: no inline scripts, no plugins, no framing, no <base>
tricks, so an XSS that slips past escaping still cannot run injected code. A view that needs a
different policy (the API docs) sets the header itself and this middleware leaves it alone.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

CSP_HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and CSP_HEADER not in response:
            response[CSP_HEADER] = policy
        return response
