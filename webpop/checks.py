"""System checks for webpop's own settings (``manage.py check``, ``check --deploy``).

Django's checks cover its security middleware and cookies; these cover the
switches that only tests should flip and the encryption keys, so a production
start with an unsafe or broken value is reported before anyone logs in.
"""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.conf import settings
from django.core import checks
from django.core.checks import Error, Tags, register


@register(Tags.security)
def encryption_keys(app_configs, **kwargs) -> list:
    keys = settings.WEBPOP_ENCRYPTION_KEYS
    if not keys:
        return [Error("WEBPOP_ENCRYPTION_KEYS is empty.", id="webpop.E002")]
    errors = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            errors.append(
                Error(
                    f"Key {position} of WEBPOP_ENCRYPTION_KEYS is not a Fernet key.",
                    hint="A key is 32 url-safe base64-encoded bytes; `manage.py rotatekeys --generate-key` makes one.",
                    id="webpop.E002",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def test_only_switches(app_configs, **kwargs) -> list:
    found = []
    if not settings.WEBPOP_SANITIZE_HTML:
        found.append(
            Error(
                "WEBPOP_SANITIZE_HTML is off: mail HTML is shown unsanitized.",
                hint="This switch exists for tests of the sandbox alone; remove it from the environment.",
                id="webpop.E001",
            )
        )
    if settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE:
        found.append(
            checks.Warning(
                "WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE is on: any e-mail can make the server fetch from internal "
                "addresses (loopback, the LAN, cloud metadata).",
                hint="Turn it off outside tests.",
                id="webpop.W001",
            )
        )
    if settings.WEBPOP_POP3_ALLOW_PRIVATE:
        found.append(
            checks.Info(
                "WEBPOP_POP3_ALLOW_PRIVATE is on: users may point POP3 accounts and autoconfig at internal addresses.",
                hint="Keep it only if your POP3 server is on your own network and you trust every user.",
                id="webpop.I001",
            )
        )
    return found
