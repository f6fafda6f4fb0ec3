"""Error views in the app's look and the user's language.

``csrf_failure`` is settings.CSRF_FAILURE_VIEW: Django's own is an unstyled English page. The
reason is not shown (it can name the Referer or Origin the browser sent); Django's CSRF
middleware has already logged it.

``server_error`` is handler500. An exception that means a service is away for now (PostgreSQL
restarting, Redis gone where the cache must answer) gets "back in a moment" with 503 and
Retry-After, so browsers, proxies and monitors see an outage rather than a bug. Django calls
the handler inside its ``except`` block, so the exception being handled is the current one.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader

RETRY_AFTER = 10  # seconds: about how long a PostgreSQL restart or a Redis failover takes


def outage_errors() -> tuple[type[BaseException], ...]:
    """Exceptions raised while the database or the cache is unreachable."""
    errors: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is in requirements.txt
        return errors
    return (*errors, RedisConnectionError, RedisTimeoutError)


def is_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, outage_errors())


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "403_csrf.html", status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    # Rendered without a request context: no context processor may touch the database.
    if is_outage(sys.exc_info()[1]):
        response = HttpResponse(loader.render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER)
        response["Cache-Control"] = "no-store"
        return response
    return HttpResponse(loader.render_to_string("500.html"), status=500)
