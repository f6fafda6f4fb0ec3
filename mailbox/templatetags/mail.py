from django import template
from django.utils.safestring import SafeString

from ..rows import highlighter

register = template.Library()


@register.filter
def highlight(text: str, terms: list[str]) -> SafeString:
    """Escape ``text`` and wrap every occurrence of a search term in <mark>."""
    return highlighter(terms)(text)
