"""Security headers on every kind of response, and API docs without a CDN."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

POLICY = "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'"


@pytest.mark.parametrize("url", ["/login/", "/healthz", "/api/v1/me/", "/api/v1/schema/", "/admin/login/"])
def test_responses_carry_the_security_headers(url):
    response = Client().get(url)
    assert response["Content-Security-Policy"].startswith(POLICY)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("url", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_api_docs_use_no_cdn_and_no_inline_script(url):
    client = Client()
    response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert not re.search(r"""(src|href)=["']https?://""", html), "docs must load nothing from another origin"
    assert not re.search(r"<script>\s*\S", html), "no inline scripts (CSP script-src 'self')"
    assert "script-src 'self';" in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]


def test_swagger_start_script_is_served_from_our_origin():
    response = Client().get("/api/v1/docs/?script=")
    assert response.status_code == 200
    assert "SwaggerUIBundle" in response.content.decode()
