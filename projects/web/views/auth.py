"""The sign-in page, with the failed-login limit from ``projects.core.ratelimit``."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpResponse

from projects.core import ratelimit


class RateLimitedLoginView(auth_views.LoginView):
    """Django's LoginView; while the username or address is locked out it answers 429."""

    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs) -> HttpResponse:
        if ratelimit.login_blocked(request, request.POST.get("username")):
            minutes = max(1, round(ratelimit.retry_after_seconds() / 60))
            response = self.render_to_response(self.get_context_data(form=self.get_form(), rate_limited=minutes))
            response.status_code = 429
            response["Retry-After"] = str(ratelimit.retry_after_seconds())
            return response
        return super().post(request, *args, **kwargs)
