"""The Undo in the banner after Send, on whatever page Send led to (the banner is a flash message, so the
page cache neither serves nor keeps that page)."""

from __future__ import annotations

from django import template

register = template.Library()

SESSION_KEY = "undo_send"


@register.inclusion_tag("outgoing/_undo_send.html", takes_context=True)
def undo_send(context) -> dict:
    request = context.get("request")
    outgoing_id = request.session.pop(SESSION_KEY, None) if request is not None else None
    return {"outgoing_id": outgoing_id, "csrf_token": context.get("csrf_token")}
