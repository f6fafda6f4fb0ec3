"""Session engine: Django's database sessions in users.Session, with user, browser and address.

Set as SESSION_ENGINE. Rows are keyed by the SHA-256 of the session key, never the
key itself, so a copy of the database (or an admin page) holds no usable session
cookie. The user link lets people list and end their own sessions, and makes
deleting a user delete their sessions too.

The row is also kept in the cache (as Django's cached_db engine keeps session data),
with a copy of its signed-in user (users.backends), so a page view reads neither
from the database, in one cache read. Every write goes to the database first and
then replaces the cached entry; every delete, however it happens (sign-out, "end
this session", a deleted user's cascade, the admin), drops it through the
post_delete signal (``row_deleted``); a change to the user drops the entries of all
their sessions (``backends.forget``). A failed drop raises: an ended session must
not live on in the cache.
"""

from __future__ import annotations

import hashlib
import logging
import time
from functools import cache as memoize

from asgiref.sync import sync_to_async
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone

from webpop.cache import drop_now_and_at_commit, report_unavailable

from . import backends

logger = logging.getLogger(__name__)


def key_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


@memoize
def _format() -> str:
    # Entries are pickled rows and users: a change to either model, or to the entry, makes new keys.
    from .models import Session

    fields = [f.attname for model in (Session, get_user_model()) for f in model._meta.concrete_fields]
    return hashlib.sha256(",".join(["entry:row,user,user_at", *fields]).encode()).hexdigest()[:8]


def _cache_key(hashed: str) -> str:
    return f"session-row:{_format()}:{hashed}"


def cache_keys(hashed_keys) -> list[str]:
    return [_cache_key(h) for h in hashed_keys]


def cache_row(row, user=None, user_at: float = 0.0) -> None:
    """Keep ``row`` (as saved) in the cache until it expires, with its user as read at ``user_at``."""
    ttl = int((row.expire_date - timezone.now()).total_seconds())
    if ttl <= 0:
        return
    try:
        cache.set(_cache_key(row.session_key), (row, user, user_at), ttl)
    except Exception as exc:  # the next request reads the database
        report_unavailable(logger, "session cache", exc)


def forget_rows(hashed_keys) -> None:
    """Drop cached rows (webpop.cache.drop_now_and_at_commit)."""
    drop_now_and_at_commit(cache_keys(hashed_keys))


def row_deleted(sender, instance, **kwargs) -> None:
    forget_rows([instance.session_key])  # raises if the cache is unreachable: the sign-out fails visibly


def row_saved(sender, instance, **kwargs) -> None:
    # Written elsewhere than by a SessionStore (the admin): the next request reads the row afresh.
    try:
        forget_rows([instance.session_key])
    except Exception as exc:
        report_unavailable(logger, "session cache", exc)


class SessionStore(DbSessionStore):
    # Set by users.middleware.SessionMiddleware for web requests; empty for other callers.
    ip: str | None = None
    user_agent: str = ""

    def __init__(self, session_key=None):
        super().__init__(session_key)
        self.row = None  # the row as loaded, for created_at/last_seen
        self._saved_row = None
        # The signed-in user as cached with the row (users.backends reads it), and when it was read.
        self.user = None
        self.user_at = 0.0

    @classmethod
    def get_model_class(cls):
        from .models import Session

        return Session

    def load(self):
        data = super().load()
        if data.get(BACKEND_SESSION_KEY) == backends.LEGACY_BACKEND:
            data[BACKEND_SESSION_KEY] = backends.BACKEND  # same users, same checks; saved back with the session
            self.modified = True
        return data

    def _get_session_from_db(self):
        hashed = key_hash(self.session_key or "")
        try:
            entry = cache.get(_cache_key(hashed))
        except Exception as exc:
            report_unavailable(logger, "session cache", exc)
            entry = None
        if isinstance(entry, tuple) and len(entry) == 3 and entry[0].expire_date > timezone.now():
            self.row, user, user_at = entry
            if user is not None and user.pk == self.row.user_id and time.time() - user_at < backends.USER_TTL:
                self.user, self.user_at = user, user_at
            return self.row
        try:
            self.row = self.model.objects.get(session_key=hashed, expire_date__gt=timezone.now())
        except (self.model.DoesNotExist, SuspiciousOperation):
            self.row = None
            self._session_key = None
        else:
            cache_row(self.row)
        return self.row

    async def _aget_session_from_db(self):
        try:
            self.row = await self.model.objects.aget(
                session_key=key_hash(self.session_key or ""), expire_date__gt=timezone.now()
            )
        except (self.model.DoesNotExist, SuspiciousOperation):
            self.row = None
            self._session_key = None
        return self.row

    def exists(self, session_key):
        return self.model.objects.filter(session_key=key_hash(session_key)).exists()

    async def aexists(self, session_key):
        return await self.model.objects.filter(session_key=key_hash(session_key)).aexists()

    def remember_user(self, user) -> None:
        """Cache ``user``, just read, with this session's row: the next request reads both at once."""
        if self.row is not None and self.row.user_id == user.pk:
            self.user, self.user_at = user, time.time()
            self.recache()

    def recache(self) -> None:
        same_user = self.user is not None and self.row.user_id == self.user.pk
        cache_row(self.row, *((self.user, self.user_at) if same_user else ()))

    def save(self, must_create=False):
        super().save(must_create)
        if self._saved_row is not None:  # the row as written, for the next request
            self.row, self._saved_row = self._saved_row, None
            self.recache()

    async def asave(self, must_create=False):
        await super().asave(must_create)
        if self._saved_row is not None:
            self.row, self._saved_row = self._saved_row, None
            await sync_to_async(self.recache)()

    def delete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is not None:
            self.model.objects.filter(session_key=key_hash(session_key)).delete()  # post_delete drops the cache

    async def adelete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is not None:
            await self.model.objects.filter(session_key=key_hash(session_key)).adelete()

    def create_model_instance(self, data):
        obj = super().create_model_instance(data)
        return self._fill(obj, data)

    async def acreate_model_instance(self, data):
        obj = await super().acreate_model_instance(data)
        return self._fill(obj, data)

    def _fill(self, obj, data):
        obj.session_key = key_hash(obj.session_key)
        now = timezone.now()
        user_id = data.get(SESSION_KEY)
        obj.user_id = get_user_model()._meta.pk.to_python(user_id) if user_id is not None else None
        same = self.row is not None and self.row.session_key == obj.session_key
        # A new key (sign-in cycles it) is a new session as far as people are concerned.
        obj.created_at = self.row.created_at if same else now
        obj.last_seen = now
        obj.ip = self.ip or (self.row.ip if same else None)
        obj.user_agent = self.user_agent or (self.row.user_agent if same else "")
        self._saved_row = obj
        return obj
