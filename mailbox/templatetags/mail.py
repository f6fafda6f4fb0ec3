import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def highlight(text: str, terms: list[str]) -> str:
    """Escape ``text`` and wrap every occurrence of a search term in <mark>."""
    escaped = escape(text or "")
    words = sorted({escape(t) for t in terms or [] if t and len(t) > 1}, key=len, reverse=True)
    if not words:
        return mark_safe(escaped)  # noqa: S308 (escaped above)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    return mark_safe(pattern.sub(lambda m: f"<mark>{m.group(0)}</mark>", escaped))  # noqa: S308 (escaped above)
