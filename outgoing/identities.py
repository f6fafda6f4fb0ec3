"""Sending identities: the addresses an account sends as, each with its own name and signature.

Every account that sends has one default identity, which mirrors its SMTP settings' From name,
address and signature (kept equal from both sides here); other identities are aliases. A draft
names its identity; none means the account's main one.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import MailAccount
from webpop.lib import pagecache

from . import compose, richtext, text
from .models import Identity, SignaturePlacement, SmtpSettings


class IdentityRefused(ValueError):
    """The identity cannot be saved or deleted as asked; nothing changed."""


def sync_default(smtp: SmtpSettings) -> Identity:
    """The account's default identity, made equal to its SMTP settings (call inside their transaction)."""
    identity = Identity.objects.select_for_update().filter(account_id=smtp.account_id, is_default=True).first()
    if identity is None:
        identity = Identity(account_id=smtp.account_id, is_default=True)
    if identity.signature != smtp.signature:  # the text was changed there: its rich version is out of date
        identity.signature_html = ""
    identity.address, identity.name, identity.signature = smtp.from_email, smtp.from_name, smtp.signature
    # An alias with the new main address gives way to it (the same address twice is one identity).
    Identity.objects.filter(account_id=smtp.account_id, address__iexact=smtp.from_email, is_default=False).delete()
    identity.save()
    pagecache.touch_message_pages([smtp.account.owner_id])  # a conversation page warns of look-alikes of it
    return identity


def of_user(user) -> list[Identity]:
    """Every identity of every account of the user's that can send, main ones first per account."""
    accounts = MailAccount.objects.filter(owner=user, smtp__isnull=False)
    missing = list(SmtpSettings.objects.filter(account__in=accounts).exclude(account__identities__is_default=True))
    if missing:  # settings written without outgoing.actions (an older version, the admin): give them theirs
        Identity.objects.bulk_create(
            [
                Identity(
                    account_id=s.account_id,
                    address=s.from_email,
                    name=s.from_name,
                    signature=s.signature,
                    is_default=True,
                )
                for s in missing
            ],
            ignore_conflicts=True,
        )
        pagecache.touch_message_pages([user.pk])  # a conversation page warns of look-alikes of the user's addresses
    rows = Identity.objects.filter(account__in=accounts).select_related("account", "account__smtp")
    return list(rows.order_by("account_id", "-is_default", "address", "id"))


def of_account(account: MailAccount) -> list[Identity]:
    return list(Identity.objects.filter(account=account))


def for_reply(identities: list[Identity], original: compose.Original, account: MailAccount) -> Identity | None:
    """The identity a message was sent to (its To, then Cc, then Delivered-To; case-insensitive).

    The receiving account's identities win over another account's with the same address.
    None: no match, the account's main identity (or None when it cannot send).
    """
    ranked = sorted(identities, key=lambda i: (i.account_id != account.id, not i.is_default))
    by_address: dict[str, Identity] = {}
    for identity in ranked:
        by_address.setdefault(identity.address.lower(), identity)
    for mailbox in [*original.to, *original.cc, *original.delivered_to]:
        if mailbox.key in by_address:
            return by_address[mailbox.key]
    return next((i for i in ranked if i.account_id == account.id and i.is_default), None)


def signature_text(identity: Identity | None, smtp: SmtpSettings | None) -> str:
    if identity is not None:
        return identity.signature
    return smtp.signature if smtp is not None else ""


def placement(identity: Identity | None) -> str:
    return identity.signature_placement if identity is not None else SignaturePlacement.ABOVE


@transaction.atomic
def save(owner, account: MailAccount, identity: Identity | None, data: dict) -> Identity:
    """Create (``identity`` None) or update one of ``account``'s identities; the default also updates the SMTP
    settings' From. The caller checked the owner; it is checked again here."""
    if account.owner_id != owner.id or (identity is not None and identity.account_id != account.id):
        raise IdentityRefused(_("Unknown account."))
    smtp = SmtpSettings.objects.select_for_update().filter(account=account).first()
    if smtp is None:
        raise IdentityRefused(_("Set up sending for %(account)s first.") % {"account": account.display_name})
    identity = identity or Identity(account=account)
    identity.address = data["address"].strip()
    identity.name = text.one_line(data.get("name", ""))
    identity.signature_html = ""
    identity.signature = text.body(data.get("signature", ""))
    if data.get("signature_format") == "rich" and data.get("signature_html"):
        # Rich text (no pictures) and its text version, for plain text messages and the SMTP settings.
        identity.signature_html = richtext.clean(text.storable(data["signature_html"]))
        identity.signature = richtext.html_to_text(identity.signature_html).rstrip("\n")
    identity.signature_placement = data.get("signature_placement") or SignaturePlacement.ABOVE
    try:
        with transaction.atomic():
            identity.save()
    except IntegrityError:
        raise IdentityRefused(_("This account already sends as %(address)s.") % {"address": identity.address}) from None
    if identity.is_default:
        SmtpSettings.objects.filter(id=smtp.id).update(
            from_email=identity.address, from_name=identity.name, signature=identity.signature
        )
    pagecache.touch_message_pages([account.owner_id])  # a conversation page warns of look-alikes of its address
    return identity


@transaction.atomic
def delete(owner, identity_id: int) -> bool:
    """Delete an alias (never an account's main identity); drafts written as it fall back to the main one."""
    deleted, _rows = Identity.objects.filter(id=identity_id, account__owner=owner, is_default=False).delete()
    if deleted:
        pagecache.touch_message_pages([owner.pk])  # its address is no longer the user's own
    return bool(deleted)
