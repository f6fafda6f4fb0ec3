from django import template
from django.conf import settings

from users.sessions import key_hash

from .. import actions, browsers
from ..models import PushSubscription
from ..views import ContentForm

register = template.Library()


@register.inclusion_tag("push/section.html", takes_context=True)
def notifications_section(context) -> dict:
    """The Preferences page's "Notifications" section: the control, what a notification shows, the browsers."""
    request = context["request"]
    current = key_hash(request.session.session_key or "")
    subscriptions = PushSubscription.objects.filter(owner_id=request.user.id).order_by("-created_at", "-id")
    return {
        "csrf_token": context.get("csrf_token"),
        "server_key": settings.WEBPOP_VAPID_PUBLIC_KEY if actions.push_enabled() else "",
        "content_form": ContentForm(initial={"content": actions.settings_for(request.user.id).content}),
        "browsers": [
            (browser, browsers.describe(browser.user_agent), browser.session_id == current) for browser in subscriptions
        ],
    }
