"""``{% icon "name" %}``: one icon of the vendored Lucide set (static/icons/sprite.svg, ISC licence);
``{% once %}``: markup rendered once per process."""

from __future__ import annotations

import contextlib
from functools import cache

from django import template
from django.conf import settings
from django.template.loader import get_template
from django.templatetags.static import static
from django.urls import get_script_prefix
from django.utils import timezone, translation
from django.utils.safestring import SafeString

register = template.Library()


@cache
def _sprite() -> str:
    return static("icons/sprite.svg")


@cache
def _rendered(name: str) -> SafeString:
    # A page shows dozens of icons from a few names: shell/icon.html is rendered once per name
    # (an inclusion tag rendered it again for each, a new context every time).
    return get_template("shell/icon.html").render({"href": f"{_sprite()}#{name}"})


@register.simple_tag
def icon(name: str) -> SafeString:
    """Decorative: the button or link it sits in carries the text (visible or visually hidden)."""
    return _rendered(str(name))


# Fragments rendered once per process: at most this many (language, name, key) variants are kept.
ONCE_VARIANTS = 512
_once: dict[tuple, SafeString] = {}


class OnceNode(template.Node):
    def __init__(self, nodelist: template.NodeList, name: str, keys: list[template.base.FilterExpression]) -> None:
        self.nodelist, self.name, self.keys = nodelist, name, keys

    def render(self, context: template.Context) -> SafeString:
        if settings.DEBUG:  # an edited template shows at once while developing
            return self.nodelist.render(context)
        key = (
            self.name,
            translation.get_language(),
            get_script_prefix(),
            timezone.get_current_timezone_name(),
            *(k.resolve(context) for k in self.keys),
        )
        html = _once.get(key)
        if html is None:
            html = SafeString(self.nodelist.render(context))
            if len(_once) >= ONCE_VARIANTS:
                # The oldest variant; another thread may have let it go first.
                with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                    _once.pop(next(iter(_once)))
            _once[key] = html
        return html


@register.tag
def once(parser: template.base.Parser, token: template.base.Token) -> OnceNode:
    """``{% once "name" key… %}…{% endonce %}``: the enclosed markup rendered once per process for each
    language, script prefix, time zone and value of the keys, then reused.

    For markup that is the same on every page of a kind (a help dialog, a toolbar's buttons): the keys
    must name everything the markup reads from the context, and it must hold nothing per request
    (no CSRF token, no user data unless that user is a key) nor set a variable used after it.
    Hashable keys only. With DEBUG on it renders every time.
    """
    bits = token.split_contents()
    if len(bits) < 2:
        raise template.TemplateSyntaxError("{% once %} needs a name")
    nodelist = parser.parse(("endonce",))
    parser.delete_first_token()
    return OnceNode(nodelist, bits[1], [parser.compile_filter(bit) for bit in bits[2:]])
