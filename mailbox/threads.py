"""Conversations: which messages belong together (JWZ-style, with a subject fallback).

Each message gets a ``thread_id`` at ingest: the id of the first message of
its conversation. Messages are joined through Message-ID / In-Reply-To /
References in either arrival order (a reply that arrives before the message it
answers is merged when the original comes); a reply with no usable references
joins a recent conversation with the same subject, as mail clients do.
"""

from __future__ import annotations

import datetime as dt
import re

from django.db import transaction

from webpop.lib import pagecache

from .models import Message, MessageReference

_REPLY_PREFIX = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|tr|rv|ref|odp|res|r|enc|vá|διαβ|ynt|回复|转发|回覆|轉寄)(\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_LIST_TAG = re.compile(r"^\s*\[[^\]]{1,40}\]\s*")
_MSGID = re.compile(r"<([^<>\s]{1,990})>")
SUBJECT_WINDOW = dt.timedelta(days=60)
MAX_REFERENCES = 50


def normalize_subject(subject: str) -> str:
    """``Re: [list] Fwd: Hello`` → ``hello``: what replies to the same message share."""
    text = subject or ""
    for _ in range(10):
        stripped = _LIST_TAG.sub("", _REPLY_PREFIX.sub("", text))
        if stripped == text:
            break
        text = stripped
    return " ".join(text.split()).lower()[:255]


def is_reply_subject(subject: str) -> bool:
    return bool(_REPLY_PREFIX.match(_LIST_TAG.sub("", subject or "")))


def message_ids(header: str) -> list[str]:
    """The ``<id>`` tokens of a References / In-Reply-To header, in order, without brackets."""
    return [match.lower() for match in _MSGID.findall(header or "")]


def references_of(references: str, in_reply_to: str) -> list[str]:
    """Referenced ids, parent last; bounded so a hostile header cannot cost much."""
    ids = message_ids(references)
    for parent in message_ids(in_reply_to)[:1]:
        if parent in ids:
            ids.remove(parent)
        ids.append(parent)
    return ids[-MAX_REFERENCES:]


def clean_id(message_id: str) -> str:
    found = message_ids(message_id)
    return found[0] if found else (message_id or "").strip().strip("<>").lower()


def assign(messages: list[Message]) -> None:
    """Give newly stored ``messages`` (of one owner) their conversations, merging those they connect.

    A handful of queries per batch, not per message: references are stored in
    bulk, parents and earlier replies are looked up for the whole batch, and
    messages of the batch can thread with each other.
    """
    if not messages:
        return
    owner_id = messages[0].owner_id
    stored_as = {m.id: m.thread_id for m in messages}  # their own id when inserted so (store.save_messages)
    refs_of = {m.id: references_of(m.references, m.in_reply_to) for m in messages}
    with transaction.atomic():
        MessageReference.objects.bulk_create(
            [
                MessageReference(owner_id=owner_id, message_id=m.id, ref=ref[:255])
                for m in messages
                for ref in refs_of[m.id]
            ],
            ignore_conflicts=True,
        )
        batch_ids = [m.id for m in messages]
        all_refs = {ref for refs in refs_of.values() for ref in refs}
        keys = {m.message_key for m in messages if m.message_key}
        # Known messages this batch refers to, and known replies to this batch.
        by_key: dict[str, int] = {}
        for key, thread_id, pk in (
            Message.objects.filter(owner_id=owner_id, message_key__in=all_refs | keys)
            .exclude(id__in=batch_ids)
            .values_list("message_key", "thread_id", "id")
        ):
            by_key.setdefault(key, thread_id or pk)
        replies: dict[str, set[int]] = {}
        for ref, thread_id, pk in (
            MessageReference.objects.filter(owner_id=owner_id, ref__in=keys)
            .exclude(message_id__in=batch_ids)
            .values_list("ref", "message__thread_id", "message_id")
        ):
            replies.setdefault(ref, set()).add(thread_id or pk)

        merges: dict[int, int] = {}  # thread id -> the thread it joins
        for message in sorted(messages, key=lambda m: m.id):
            related = {by_key[ref] for ref in refs_of[message.id] if ref in by_key}
            if message.message_key:
                related |= replies.get(message.message_key, set())
                if message.message_key in by_key:
                    related.add(by_key[message.message_key])  # another copy of the same message
            related = {_root(merges, t) for t in related}
            if not related and is_reply_subject(message.subject) and message.thread_subject:
                match = (
                    Message.objects.filter(
                        owner_id=owner_id,
                        thread_subject=message.thread_subject,
                        date__gte=message.date - SUBJECT_WINDOW,
                        date__lte=message.date + SUBJECT_WINDOW,
                    )
                    .exclude(id=message.id)
                    .order_by("-date")
                    .values_list("thread_id", "id")
                    .first()
                )
                if match:
                    related.add(_root(merges, match[0] or match[1]))
            thread_id = min(related) if related else message.id
            for other in related - {thread_id}:
                merges[other] = thread_id
            message.thread_id = thread_id
            if message.message_key:
                by_key.setdefault(message.message_key, thread_id)
        for message in messages:
            message.thread_id = _root(merges, message.thread_id)
        changed = [m for m in messages if m.thread_id != stored_as[m.id]]
        if changed:
            Message.objects.filter(owner_id=owner_id).bulk_update(changed, ["thread_id"], batch_size=500)
        for old, new in merges.items():
            Message.objects.filter(owner_id=owner_id, thread_id=old).update(thread_id=_root(merges, new))
        if changed or merges:  # conversations shown grouped on list pages
            pagecache.touch([owner_id])


def _root(merges: dict[int, int], thread_id: int) -> int:
    seen = 0
    while thread_id in merges and seen < 1000:
        thread_id = merges[thread_id]
        seen += 1
    return thread_id
