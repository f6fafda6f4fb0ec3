"""Search: the query language people know from Gmail, turned into a queryset.

``from:anna has:attachment "quarterly report" before:2026-01-01 -is:unread``

Free words are matched with the database's full-text index over subject,
sender, recipients and body text: PostgreSQL's tsvector with a GIN index on
(owner, document), so the queryset's owner condition and the words are one
index scan over that user's postings (mailbox/owner_search_index.py), or
SQLite's FTS5 on the embedded default (see migration 0006). Operators filter
columns.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from webpop.lib import pagecache

OPERATORS = {"from", "to", "subject", "has", "is", "before", "after", "account", "in", "older_than", "newer_than"}
_TOKEN = re.compile(r'(-?)(\w+):("[^"]*"|\S+)|(-?)("[^"]*"|\S+)')
_RELATIVE = re.compile(r"^(\d+)([dwmy])$")


class SearchError(ValueError):
    """A query that cannot be understood; the message says what to fix."""


@dataclass
class ParsedQuery:
    words: list[str] = field(default_factory=list)
    excluded_words: list[str] = field(default_factory=list)
    filters: list[tuple[str, str, bool]] = field(default_factory=list)  # (operator, value, negated)

    @property
    def is_empty(self) -> bool:
        return not (self.words or self.excluded_words or self.filters)

    def highlight_terms(self) -> list[str]:
        terms = [w for w in self.words if w]
        terms += [value for op, value, negated in self.filters if op in {"from", "to", "subject"} and not negated]
        return terms


def parse(query: str) -> ParsedQuery:
    parsed = ParsedQuery()
    for match in _TOKEN.finditer(query or ""):
        negated_op, operator, op_value, negated_word, word = match.groups()
        if operator is not None and operator.lower() in OPERATORS:
            value = _unquote(op_value)
            if value:
                parsed.filters.append((operator.lower(), value, bool(negated_op)))
            continue
        text = _unquote(word if word is not None else match.group(0))
        if not text:
            continue
        if negated_word or (negated_op and operator):
            parsed.excluded_words.append(text.lstrip("-"))
        else:
            parsed.words.append(text)
    return parsed


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].strip()
    return value.strip()


def _date(value: str, operator: str) -> dt.datetime:
    relative = _RELATIVE.match(value.lower())
    now = timezone.now()
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        days = amount * {"d": 1, "w": 7, "m": 30, "y": 365}[unit]
        return now - dt.timedelta(days=days)
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y"):
        try:
            day = dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        return timezone.make_aware(day, timezone.get_current_timezone())
    raise SearchError(
        gettext("%(term)s — write dates as YYYY-MM-DD, or ages like 7d, 2w, 3m, 1y.") % {"term": f"{operator}:{value}"}
    )


def filter_q(operator: str, value: str) -> Q:
    """The condition one operator stands for."""
    if operator == "from":
        return Q(from_email__icontains=value) | Q(from_name__icontains=value)
    if operator == "to":
        return Q(to__icontains=value) | Q(cc__icontains=value)
    if operator == "subject":
        return Q(subject__icontains=value)
    if operator == "has":
        if value.lower() in {"attachment", "attachments"}:
            return Q(has_attachments=True)
        raise SearchError(gettext("%(term)s — only has:attachment is known.") % {"term": f"has:{value}"})
    if operator == "is":
        flags = {
            "unread": Q(seen=False),
            "read": Q(seen=True),
            "starred": Q(flagged=True),
            "flagged": Q(flagged=True),
        }
        if value.lower() not in flags:
            raise SearchError(gettext("%(term)s — use is:unread, is:read or is:starred.") % {"term": f"is:{value}"})
        return flags[value.lower()]
    if operator in {"before", "older_than"}:
        return Q(date__lt=_date(value, operator))
    if operator in {"after", "newer_than"}:
        return Q(date__gte=_date(value, operator))
    if operator == "account":
        if value.isdigit():
            return Q(account_id=int(value))
        return Q(account__label__iexact=value) | Q(account__host__icontains=value) | Q(account__username__iexact=value)
    if operator == "in":
        return Q(folder=value.lower())
    raise SearchError(gettext("Unknown operator %(operator)s:") % {"operator": operator})


def apply(queryset: QuerySet, parsed: ParsedQuery) -> QuerySet:
    """Narrow ``queryset`` (already limited to one owner) by ``parsed``."""
    for operator, value, negated in parsed.filters:
        condition = filter_q(operator, value)
        queryset = queryset.exclude(condition) if negated else queryset.filter(condition)
    if parsed.words:
        queryset = full_text(queryset, parsed.words)
    for word in parsed.excluded_words:
        queryset = queryset.exclude(Q(subject__icontains=word) | Q(snippet__icontains=word))
    return queryset


SEARCH_FIELDS = ("subject", "from_name", "from_email", "to", "cc", "search_text")


def full_text(queryset: QuerySet, words: list[str]) -> QuerySet:
    """Messages matching every word, through the database's full-text index.

    On PostgreSQL, rows not indexed yet (stored since ``index_pending`` last
    ran; a partial index finds them) are matched by substring meanwhile.
    """
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery

        query = SearchQuery(" ".join(words), search_type="websearch", config="simple")
        return queryset.filter(Q(search_document=query) | (Q(search_document__isnull=True) & _substrings(words)))
    if connection.vendor == "sqlite":
        match = " ".join(_fts5_term(word) for word in words)
        return queryset.extra(
            where=["mailbox_message.id IN (SELECT rowid FROM mailbox_message_fts WHERE mailbox_message_fts MATCH %s)"],
            params=[match],
        )
    return queryset.filter(_substrings(words))  # any other database: substring matches


def _substrings(words: list[str]) -> Q:
    """Every word somewhere in the searched columns."""
    condition = Q()
    for word in words:
        any_field = Q()
        for name in SEARCH_FIELDS:
            any_field |= Q(**{f"{name}__icontains": word})
        condition &= any_field
    return condition


INDEX_BATCH = 500


def index_pending(limit: int = INDEX_BATCH) -> int:
    """Build the search documents of up to ``limit`` messages stored since the last run.

    PostgreSQL only (SQLite's FTS5 triggers index at insert). Concurrent runs
    skip each other's rows. Returns how many were indexed: 0 means caught up.
    """
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        # The batch is a MATERIALIZED CTE: as an IN (subquery) the planner may rescan it once per
        # row, and each rescan skips the rows just updated and locks ``limit`` more.
        cursor.execute(
            """
            WITH batch AS MATERIALIZED (
              SELECT id FROM mailbox_message WHERE search_document IS NULL
              ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
            )
            UPDATE mailbox_message SET search_document =
              mailbox_message_document(subject, from_name, from_email, "to", cc, search_text)
            FROM batch WHERE mailbox_message.id = batch.id
            RETURNING mailbox_message.owner_id
            """,
            [limit],
        )
        owners = [owner for (owner,) in cursor.fetchall()]
    # A kept search page may differ now (a word's stem matches where the unindexed text did not).
    pagecache.touch_search_pages(owners)
    return len(owners)


def index_all_pending() -> int:
    """``index_pending`` until caught up; returns the total."""
    total = 0
    while indexed := index_pending():
        total += indexed
    return total


def _fts5_term(word: str) -> str:
    # Each word a quoted FTS5 string with prefix match: user text is never FTS5 syntax.
    return '"' + word.replace('"', '""') + '"*'


def split_words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()
