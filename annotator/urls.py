"""Root URLs. Each domain app's ``api.py`` contributes ``ROUTES`` (viewsets for the one router)
and ``URLS`` (plain API views); they are all served under ``/api/v1/``."""

from importlib import import_module

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from annotator.docs import RedocView, SwaggerView
from annotator.health import healthz

API_APPS = (
    "projects.core",
    "projects.documents",
    "projects.assignment",
    "projects.annotations",
    "projects.prelabel",
    "projects.exports",
    "projects.quality",
    "projects.imports",
)

router = DefaultRouter()
api_urls: list = []
for app in API_APPS:
    try:
        module = import_module(f"{app}.api")
    except ModuleNotFoundError as exc:
        if exc.name != f"{app}.api":
            raise
        continue
    for prefix, viewset, basename in getattr(module, "ROUTES", ()):
        router.register(prefix, viewset, basename=basename)
    api_urls += getattr(module, "URLS", [])

urlpatterns = [
    path("api/v1/", include(api_urls + router.urls)),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/redoc/", RedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("projects.web.urls")),
]
