from __future__ import annotations

from django import template

from mailbox.models import Message

from .. import actions
from ..models import UnsubscribeRequest

register = template.Library()


@register.simple_tag
def unsubscribe_control(message: Message) -> dict:
    """What the message header shows: nothing, "Unsubscribe", its progress, or "Unsubscribed"."""
    offered = actions.offer(message)
    if not offered:
        return {"offered": False}
    existing = UnsubscribeRequest.objects.select_related("outgoing").filter(message_id=message.id).first()
    return {"offered": True, "status": actions.status(existing) if existing else None}
