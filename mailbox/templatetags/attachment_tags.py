"""``{% attachment_list message %}``: a message's attachments with thumbnails, previews and "download all"."""

from __future__ import annotations

from django import template

from .. import attachments, invitations

register = template.Library()


@register.inclusion_tag("mailbox/_attachments.html")
def attachment_list(message, shown=None) -> dict:
    """The attachments of ``message``: those in ``shown``, or by default the ones its body does not show itself.

    Used once per message (a page showing several messages includes it for each);
    its CSS and script tags load once per page whatever the number of messages.
    """
    members = attachments.zip_members(message)
    rows = members if shown is None else list(shown)
    return {
        "message": message,
        "items": [attachments.item(a) for a in rows],
        "zip_count": len(members),
        "zip_size": attachments.size_in_words(sum(a.size for a in members)),
    }


@register.inclusion_tag("mailbox/_calendar_cards.html", takes_context=True)
def calendar_cards(context, message) -> dict:
    """The events of the message's calendar attachments as cards (what, when, where, who), with their answers."""
    return {"cards": invitations.cards_for(message), "csrf_token": context.get("csrf_token")}
