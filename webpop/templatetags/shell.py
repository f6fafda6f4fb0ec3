"""``{% icon "name" %}``: one icon of the vendored Lucide set (static/icons/sprite.svg, ISC licence)."""

from __future__ import annotations

from functools import cache

from django import template
from django.template.loader import get_template
from django.templatetags.static import static
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
