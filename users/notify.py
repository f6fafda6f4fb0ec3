"""Security notices by e-mail: tell people when their sign-in settings change."""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from webpop.lib.netaddr import client_ip

log = logging.getLogger(__name__)


def security_notice(request: HttpRequest | None, user, what: str) -> None:
    """E-mail ``user`` that ``what`` happened to their account (if they have an address).

    A failure to send is logged, never raised: the change itself already happened.
    """
    if not user.email:
        return
    context = {
        "user": user,
        "what": what,
        "ip": client_ip(request) if request is not None else None,
        "site": request.get_host() if request is not None else "",
        "security_url": request.build_absolute_uri(reverse("users:security")) if request is not None else "",
    }
    subject = _("webpop: %(what)s") % {"what": what}
    try:
        send_mail(subject, render_to_string("users/email/security_notice.txt", context), None, [user.email])
    except OSError:
        log.warning("could not send a security notice to user %s", user.pk, exc_info=True)
