"""The browsable API docs (Swagger UI, Redoc), served from drf-spectacular-sidecar's static files
(no CDN) under a CSP that differs from the site's only in allowing the inline styles and the
blob: worker these two UIs create at run time. Scripts still come only from our origin."""

from __future__ import annotations

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

from annotator.middleware import CSP_HEADER

DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'self'"
)


class _DocsPolicy:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response[CSP_HEADER] = DOCS_POLICY
        return response


class SwaggerView(_DocsPolicy, SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served as a separate file (no inline script)."""


class RedocView(_DocsPolicy, SpectacularRedocView):
    template_name = "web/api/redoc.html"
