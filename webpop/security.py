"""Security headers every response carries unless its view declares a stricter policy.

Django's SecurityMiddleware and XFrameOptionsMiddleware cover HSTS, nosniff, Referrer-Policy,
Cross-Origin-Opener-Policy and X-Frame-Options (settings.py). The Content-Security-Policy comes from
django-csp: ``APP_DIRECTIVES`` (settings.CONTENT_SECURITY_POLICY) for every page — scripts and styles only
from our own origin (no inline script, no ``eval``), no plugins, no framing by other sites, no ``<base>``
tricks, forms post only to us (and to the OAuth2 providers' sign-in pages, which the "Sign in with …"
forms redirect to). The one page that is framed, the sandboxed message body (``mailbox.views_html``),
and file downloads declare their own, stricter policy (``webpop.lib.cspolicy.policy``).
"""

from __future__ import annotations

from csp.constants import HEADER, NONE, SELF
from csp.middleware import CSPMiddleware, PolicyParts
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from webpop.lib.cspolicy import in_order

# The rich text editor (static/vendor/trix) adds two <style> blocks of its own defaults when it loads (inserted
# empty, then filled); these hashes allow exactly those texts (static/css/richtext.css has the same rules,
# should they ever differ). tests/test_richtext_browser.py checks them against the vendored Trix.
TRIX_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # empty
    "'sha256-c5Z9aB2t69CSpeI1aC8dDLr7LZYZlynV8iY/8Uc9ZFk='",  # trix-editor
    "'sha256-jAP18ioNeNaQBBU5RJvT96kjJnVxHvZs+s8WUNiLnvA='",  # trix-toolbar
)

# The app's pages (settings.CONTENT_SECURITY_POLICY); the middleware adds the sign-in pages to form-action.
APP_DIRECTIVES = {
    "default-src": [SELF],
    "script-src": [SELF],
    "style-src": [SELF, *TRIX_STYLE_HASHES],
    # blob: the editor's preview of a picture being added (the page's own script makes the URL)
    "img-src": [SELF, "data:", "blob:"],
    "font-src": [SELF],
    "connect-src": [SELF],
    "frame-src": [SELF],  # the message body frame, served from our origin
    "object-src": [NONE],
    "base-uri": [NONE],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
}


def app_csp(form_targets: tuple[str, ...] = ()) -> str:
    """The app's policy as a header, with ``form_targets`` allowed to receive forms too."""
    update = {"form-action": list(form_targets)} if form_targets else None
    return in_order(build_policy(update=update), settings.CONTENT_SECURITY_POLICY["DIRECTIVES"])


# Browser features no page of ours uses; a script injected anyway gets none of them.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class SecurityHeadersMiddleware(CSPMiddleware):
    """django-csp's middleware: the sign-in pages in the app policy's form-action, directives in a stable order."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if parts.config is None and not report_only:  # the app's policy, not a view's own
            from oauth.providers import authorize_origins  # settings only, no query

            # Chromium applies form-action to the redirect a form's answer makes, too.
            origins = authorize_origins()
            if origins:
                parts.update = {**(parts.update or {})}
                parts.update["form-action"] = [*parts.update.get("form-action", []), *origins]
        return parts

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        had_policy = HEADER in response
        response = super().process_response(request, response)
        if HEADER in response and not had_policy:
            parts = self.get_policy_parts(request, response)
            names = parts.config or settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
            response[HEADER] = in_order(response[HEADER], [*names, *(parts.update or {})])
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
