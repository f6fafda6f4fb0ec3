"""Security headers every response carries unless its view set stricter ones.

Django's SecurityMiddleware and XFrameOptionsMiddleware cover HSTS, nosniff,
Referrer-Policy, Cross-Origin-Opener-Policy and X-Frame-Options (settings.py).
Django 5.2 has no Content-Security-Policy support, so this adds the app's
policy: scripts and styles only from our own origin (no inline script, no
``eval``), no plugins, no framing by other sites, no ``<base>`` tricks, forms
post only to us (and to the OAuth2 providers' sign-in pages, which the
"Sign in with …" forms redirect to). The one page that is framed, the sandboxed message body
(``mailbox.views_html``), and file downloads set their own, stricter policy,
which is kept as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# The rich text editor (static/vendor/trix) adds two <style> blocks of its own defaults when it loads (inserted
# empty, then filled); these hashes allow exactly those texts (static/css/richtext.css has the same rules,
# should they ever differ). tests/test_richtext_browser.py checks them against the vendored Trix.
TRIX_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # empty
    "'sha256-c5Z9aB2t69CSpeI1aC8dDLr7LZYZlynV8iY/8Uc9ZFk='",  # trix-editor
    "'sha256-jAP18ioNeNaQBBU5RJvT96kjJnVxHvZs+s8WUNiLnvA='",  # trix-toolbar
)


def app_csp(form_targets: tuple[str, ...] = ()) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            " ".join(["style-src 'self'", *TRIX_STYLE_HASHES]),
            # blob: the editor's preview of a picture being added (the page's own script makes the URL)
            "img-src 'self' data: blob:",
            "font-src 'self'",
            "connect-src 'self'",
            "frame-src 'self'",  # the message body frame, served from our origin
            "object-src 'none'",
            "base-uri 'none'",
            " ".join(["form-action 'self'", *form_targets]),
            "frame-ancestors 'none'",
        ]
    )


# Browser features no page of ours uses; a script injected anyway gets none of them.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            from oauth.providers import authorize_origins  # settings only, no query

            # Chromium applies form-action to the redirect a form's answer makes, too.
            response["Content-Security-Policy"] = app_csp(tuple(authorize_origins()))
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
