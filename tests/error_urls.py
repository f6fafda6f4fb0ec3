"""The project's URLs plus two views that fail, for the 400 and 500 pages (tests set ROOT_URLCONF to this)."""

from django.core.exceptions import SuspiciousOperation
from django.urls import path

from webpop.urls import handler500  # noqa: F401 (Django reads it from the root URLconf)
from webpop.urls import urlpatterns as project_urls


def bad_request(request):
    raise SuspiciousOperation("a request the server refuses")


def broken(request):
    raise RuntimeError("a view that fails")


urlpatterns = [
    path("test-errors/400/", bad_request),
    path("test-errors/500/", broken),
    *project_urls,
]
