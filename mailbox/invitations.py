"""Calendar invitations in a message: the cards, which version each is, and answering them (iTIP REPLY).

``cards_for`` reads the message's calendar attachments (at most ``MAX_CALENDARS``,
each cut to ``CALENDAR_READ_BYTES``) and records each event's UID, SEQUENCE and
METHOD in ``CalendarEntry`` rows. Those rows say whether a newer version or a
cancellation of the same event arrived: before answering that question, the
calendar files of the owner's later messages not read yet are read too (a few
per page view, newest last), so an invitation learns of its update even when the
update was never opened.

``answer`` records the user's answer on the entry and queues the REPLY to the
organiser through the account's sending settings as an ``OutgoingMessage``, so it
is sent, retried and filed in Sent like any other message.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from email.message import EmailMessage

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from webpop.lib import pagecache

from . import attachments as attachment_kinds
from . import ical, itip, mime, store
from .models import Attachment, CalendarEntry, Message

CALENDAR_READ_BYTES = 256 * 1024
MAX_CALENDARS = 5  # calendar files read for one message
INDEX_LATER_PER_VIEW = 20  # later messages' calendar files read per page view
_CALENDAR_FILES = Q(content_type__in=sorted(attachment_kinds.CALENDAR_TYPES)) | Q(filename__iendswith=".ics")


class AnswerRefused(ValueError):
    pass


@dataclass
class Card:
    attachment: Attachment
    method: str
    event: ical.Event
    entry: CalendarEntry | None = None
    updated: bool = False
    superseded_by: int | None = None  # the message id of a newer version
    cancelled_later: bool = False

    @property
    def cancelled(self) -> bool:
        return self.method == "CANCEL" or self.event.cancelled

    @property
    def answerable(self) -> bool:
        """An invitation the user can answer: a current request with an organiser and a UID to reply to."""
        return (
            self.method == "REQUEST"
            and not self.cancelled
            and self.superseded_by is None
            and bool(self.event.uid and self.event.organizer_email and self.entry)
        )

    @property
    def answer(self) -> str:
        return self.entry.answer if self.entry else ""


def _calendar_attachments(message: Message) -> list[Attachment]:
    found = []
    for attachment in message.attachments.all():
        if attachment_kinds.kind_of(attachment.filename, attachment.content_type).preview == "calendar":
            found.append(attachment)
            if len(found) == MAX_CALENDARS:
                break
    return found


def read_attachment(attachment: Attachment) -> ical.Calendar | None:
    try:
        with store.open_file(attachment.stored_path) as fh:
            return ical.read(mime.decode_text(fh.read(CALENDAR_READ_BYTES)))
    except OSError:
        return None


def _record(message: Message, attachment: Attachment, calendar: ical.Calendar | None) -> None:
    """The entries of one calendar file (a marker row when it has no event); rows that exist stay as they are."""
    events = calendar.events if calendar else []
    rows = [
        CalendarEntry(
            owner_id=message.owner_id,
            message=message,
            attachment=attachment,
            uid=event.uid,
            recurrence_id=event.recurrence_id,
            sequence=event.sequence,
            method=calendar.method,
        )
        for event in events
        if event.uid
    ] or [CalendarEntry(owner_id=message.owner_id, message=message, attachment=attachment)]
    CalendarEntry.objects.bulk_create(rows, ignore_conflicts=True)


def _index_later(message: Message) -> None:
    """Read the calendar files of the owner's messages stored after ``message`` that have no entry yet."""
    pending = (
        Attachment.objects.filter(_CALENDAR_FILES, message__owner_id=message.owner_id, message_id__gt=message.id)
        .filter(calendar_entries__isnull=True)
        .select_related("message")
        .order_by("id")[:INDEX_LATER_PER_VIEW]
    )
    for attachment in pending:
        _record(attachment.message, attachment, read_attachment(attachment))


def cards_for(message: Message) -> list[Card]:
    """The message's events as cards, each with its answer and whether a later version replaced it."""
    cards: list[Card] = []
    seen: set[tuple[str, str, int]] = set()
    for attachment in _calendar_attachments(message):
        calendar = read_attachment(attachment)
        if calendar is None:
            continue
        _record(message, attachment, calendar)
        for event in calendar.events:
            # An invitation often carries its event twice: the text/calendar part and an invite.ics.
            key = (
                (event.uid, event.recurrence_id, event.sequence)
                if event.uid
                else (str(attachment.id), str(id(event)), 0)
            )
            if key in seen:
                continue
            seen.add(key)
            cards.append(Card(attachment=attachment, method=calendar.method, event=event))
    if not any(card.event.uid for card in cards):
        return cards
    _index_later(message)
    uids = {card.event.uid for card in cards if card.event.uid}
    entries = list(CalendarEntry.objects.filter(owner_id=message.owner_id, uid__in=uids).order_by("id"))
    for card in cards:
        same = [e for e in entries if (e.uid, e.recurrence_id) == card.event.key]
        mine = [e for e in same if e.message_id == message.id]
        card.entry = next((e for e in mine if e.attachment_id == card.attachment.id), mine[0] if mine else None)
        others = [e for e in same if e.message_id != message.id]
        seq = card.event.sequence
        card.updated = card.method == "REQUEST" and (seq > 0 or any(e.sequence < seq for e in others))
        newer = [
            e
            for e in others
            if e.sequence > seq
            or (e.sequence == seq and e.method == "CANCEL" and not card.cancelled)
            or (e.sequence == seq and e.method == card.method and e.message_id > message.id)
        ]
        newer = [e for e in newer if e.method in ("REQUEST", "CANCEL", "PUBLISH")]
        if newer:
            latest = max(newer, key=lambda e: (e.sequence, e.method == "CANCEL", e.message_id))
            card.superseded_by = latest.message_id
            card.cancelled_later = latest.method == "CANCEL"
    return cards


# --- Answering ---------------------------------------------------------------------------


ANSWER_SUBJECTS = {
    "ACCEPTED": lambda title: _("Accepted: %(title)s") % {"title": title},
    "TENTATIVE": lambda title: _("Tentative: %(title)s") % {"title": title},
    "DECLINED": lambda title: _("Declined: %(title)s") % {"title": title},
}
ANSWER_TEXTS = {
    "ACCEPTED": lambda name, title: (
        _("%(name)s has accepted the invitation: %(title)s") % {"name": name, "title": title}
    ),
    "TENTATIVE": lambda name, title: (
        _("%(name)s has tentatively accepted the invitation: %(title)s") % {"name": name, "title": title}
    ),
    "DECLINED": lambda name, title: (
        _("%(name)s has declined the invitation: %(title)s") % {"name": name, "title": title}
    ),
}


def _me(event: ical.Event, addresses: set[str], default: str) -> ical.Person:
    """The attendee line that is the user's (by any of their addresses), else the sending identity."""
    for person in event.attendees:
        if person.email.lower() in addresses:
            return person
    return ical.Person("", default)


def answer(owner, attachment_id: int, uid: str, recurrence_id: str, partstat: str) -> CalendarEntry:
    """Record the user's answer to one event and queue the REPLY to its organiser.

    Raises ``Attachment.DoesNotExist`` when the attachment is not the owner's, ``AnswerRefused`` when
    the event cannot be answered, ``outgoing.send.SendRefused`` over the sending limits.
    """
    from outgoing import compose, generated, headers, text
    from outgoing.models import SmtpSettings
    from outgoing.send import SendRefused, own_addresses

    if partstat not in ical.PARTSTATS:
        raise AnswerRefused(_("Choose accept, tentative or decline."))
    attachment = Attachment.objects.select_related("message__account").get(id=attachment_id, message__owner=owner)
    message = attachment.message
    cards = {(c.attachment.id, *c.event.key): c for c in cards_for(message)}
    card = cards.get((attachment.id, uid, recurrence_id))
    if card is None or not card.answerable:
        raise AnswerRefused(_("This invitation can no longer be answered."))
    smtp = SmtpSettings.objects.filter(account=message.account).first()
    if smtp is None:
        raise SendRefused(_("Set up sending for %(account)s first.") % {"account": message.account.display_name})
    with store.open_file(attachment.stored_path) as fh:
        calendar = ical.parse(mime.decode_text(fh.read(CALENDAR_READ_BYTES)))
    me = _me(card.event, own_addresses(owner) | {smtp.from_email.lower()}, smtp.from_email)
    now = timezone.now()
    ics = itip.build_reply(
        calendar,
        uid=uid,
        recurrence_id=recurrence_id,
        attendee_email=me.email,
        attendee_name=me.name or smtp.from_name,
        partstat=partstat,
        now=now,
    )
    try:
        organizer = compose.parse_recipients(
            str(compose.Mailbox(card.event.organizer_name, card.event.organizer_email)), "to"
        )
    except (compose.ComposeError, ValueError):
        organizer = []
    if len(organizer) != 1:
        raise AnswerRefused(_("The organiser's address is not one mail can be sent to."))
    title = card.event.title or _("(no title)")
    subject = ANSWER_SUBJECTS[partstat](title)
    message_id = compose.new_message_id(smtp.from_email)
    mail = EmailMessage(policy=compose.POLICY)
    mail.set_raw("From", headers.mailbox(smtp.from_name, smtp.from_email))
    mail.set_raw("To", headers.address_list("To", [(organizer[0].name, organizer[0].address)]))
    mail.set_raw("Subject", headers.unstructured("Subject", text.one_line(subject)))
    mail["Date"] = email.utils.format_datetime(timezone.localtime(now))
    mail["Message-ID"] = message_id
    if replied_to := text.message_ids(message.message_id)[:1]:
        mail["In-Reply-To"] = replied_to[0]
    mail.set_content(ANSWER_TEXTS[partstat](smtp.from_name or smtp.from_email, title) + "\n", charset="utf-8")
    mail.add_alternative(ics.decode("utf-8"), subtype="calendar", charset="utf-8", params={"method": "REPLY"})
    for part in mail.iter_parts():
        del part["MIME-Version"]
    raw = mail.as_bytes(policy=compose.POLICY)
    with transaction.atomic():
        entry = CalendarEntry.objects.select_for_update().get(id=card.entry.id)
        generated.queue_generated(
            owner,
            message.account,
            to=str(organizer[0]),
            subject=subject,
            raw=raw,
            message_id=message_id,
            source=message,
        )
        entry.answer = partstat
        entry.answered_at = now
        entry.save(update_fields=["answer", "answered_at"])
        pagecache.touch_message_pages([owner.pk])  # its card shows the answer
    return entry
