"""The CSRF failure page in the app's look and the user's language (settings.CSRF_FAILURE_VIEW).

Django's own is an unstyled English page. The reason is not shown (it can name the Referer or
Origin the browser sent); Django's CSRF middleware has already logged it.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "403_csrf.html", status=403)
