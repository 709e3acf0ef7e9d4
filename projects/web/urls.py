"""Server-rendered pages. Each module in ``projects.web.views`` exports its own ``urlpatterns``
(one module per feature), collected here so features do not edit one shared list."""

import pkgutil
from importlib import import_module

from django.contrib.auth import views as auth_views
from django.urls import path

from projects.web import views
from projects.web.views.auth import RateLimitedLoginView

urlpatterns = [
    path("login/", RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
for module_info in pkgutil.iter_modules(views.__path__):
    urlpatterns += getattr(import_module(f"{views.__name__}.{module_info.name}"), "urlpatterns", [])
