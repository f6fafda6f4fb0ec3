"""``{% sidebar_nav sidebar %}``: the app's sidebar (mailbox.sidebar.links), rendered through its memo."""

from django import template
from django.utils.safestring import SafeString

from .. import sidebar as sidebar_module

register = template.Library()


@register.simple_tag
def sidebar_nav(shown) -> SafeString:
    return sidebar_module.html(shown)
