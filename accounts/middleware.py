from django.contrib.auth import get_user_model
from django.shortcuts import redirect
from django.urls import reverse


class FirstRunMiddleware:
    """Send every request to the first-run page while no user exists."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.has_users = False  # a cache only: once true it stays true

    def __call__(self, request):
        if not self.has_users:
            self.has_users = get_user_model().objects.exists()
            setup = reverse("first_run")
            public = request.path in (setup, "/healthz", "/readyz") or request.path.startswith("/static/")
            if not self.has_users and not public:
                return redirect(setup)
        return self.get_response(request)
