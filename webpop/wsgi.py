import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")
application = get_wsgi_application()

# Import every view now (the URLconf loads them) instead of on the first request, then take all
# objects made so far out of the garbage collector's view: its full collections otherwise walk the
# whole of Django and the app, pausing a request for tens of milliseconds now and then.
get_resolver().url_patterns  # noqa: B018
gc.freeze()
