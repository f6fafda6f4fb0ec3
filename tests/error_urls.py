"""The project's URLs plus views that fail, for the 400, 500 and 503 pages (tests set ROOT_URLCONF to this)."""

from django.core.exceptions import SuspiciousOperation
from django.db import OperationalError
from django.urls import path

from webpop.urls import handler500  # noqa: F401 (Django reads it from the root URLconf)
from webpop.urls import urlpatterns as project_urls


def bad_request(request):
    raise SuspiciousOperation("a request the server refuses")


def broken(request):
    raise RuntimeError("a view that fails")


def database_away(request):
    raise OperationalError("connection refused")  # as psycopg raises while PostgreSQL restarts


urlpatterns = [
    path("test-errors/400/", bad_request),
    path("test-errors/500/", broken),
    path("test-errors/503/", database_away),
    *project_urls,
]
