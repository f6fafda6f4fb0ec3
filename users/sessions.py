"""Session engine: Django's cached_db sessions in users.Session, with user, browser and address.

Set as SESSION_ENGINE. Rows are keyed by the SHA-256 of the session key, never the
key itself, and so is the cached copy of the session's data, so a copy of the
database or of the cache (or an admin page) holds no usable session cookie. The
user link lets people list and end their own sessions, and makes deleting a user
delete their sessions too.

As Django's cached_db engine: a page view reads the session's data from the cache,
every write goes to the database first and then replaces the cached copy. Every
delete, however it happens (sign-out, "end this session", a deleted user's cascade),
drops the cached copy through the post_delete signal (``row_deleted``); a failed drop
raises: an ended session must not live on in the cache. The signed-in user is not
part of the session: the auth backend reads it (users.backends).
"""

from __future__ import annotations

import hashlib
import logging
import time

from asgiref.sync import sync_to_async
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDbSessionStore
from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError, IntegrityError, router, transaction
from django.utils import timezone

from webpop.cache import drop_now_and_at_commit, report_unavailable

from . import backends
from .models import Session

logger = logging.getLogger(__name__)

KEY_PREFIX = "session-data:"
# When the row's "last seen" was last written, kept in the session's data so a page view that reads
# only the cache knows whether it is due: "last active" needs no finer grain, and each refresh is a write.
SEEN_KEY = "_webpop_seen"
SEEN_EVERY = 300


def key_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def forget(hashed_keys) -> None:
    """Drop the cached data of these sessions, by row id (webpop.cache.drop_now_and_at_commit)."""
    drop_now_and_at_commit([KEY_PREFIX + h for h in hashed_keys])


def row_deleted(sender, instance, **kwargs) -> None:
    forget([instance.session_key])  # raises if the cache is unreachable: the sign-out fails visibly


def row_saved(sender, instance, **kwargs) -> None:
    # Written elsewhere than by a SessionStore: the next request reads the row afresh.
    try:
        forget([instance.session_key])
    except Exception as exc:
        report_unavailable(logger, "session cache", exc)


class SessionStore(CachedDbSessionStore):
    cache_key_prefix = KEY_PREFIX
    # Set by users.middleware.SessionMiddleware for web requests; empty for other callers.
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def get_model_class(cls):
        return Session

    @property
    def cache_key(self):
        return self.cache_key_prefix + key_hash(self._get_or_create_session_key())

    async def acache_key(self):
        return self.cache_key_prefix + key_hash(await self._aget_or_create_session_key())

    def load(self):
        # cached_db's load, going on without the cache when it is away.
        try:
            data = self._cache.get(self.cache_key)
        except Exception as exc:
            report_unavailable(logger, "session cache", exc)
            data = None
        if data is None:
            row = self._get_session_from_db()
            if row is None:
                return {}
            data = self.decode(row.session_data)
            data[SEEN_KEY] = int(row.last_seen.timestamp())  # the row is the truth; it may have been written alone
            self._cache_set(data, self.get_expiry_age(expiry=row.expire_date))
        if data.get(BACKEND_SESSION_KEY) == backends.LEGACY_BACKEND:
            data[BACKEND_SESSION_KEY] = backends.BACKEND  # same users, same checks; saved back with the session
            self.modified = True
        if SESSION_KEY in data and time.time() - data.get(SEEN_KEY, 0) >= SEEN_EVERY:
            self.modified = True  # saved at the end of the request: "last seen", address and browser
        return data

    def _cache_set(self, data, age) -> None:
        try:
            self._cache.set(self.cache_key, data, age)
        except Exception as exc:  # the next request reads the database
            report_unavailable(logger, "session cache", exc)

    def _get_session_from_db(self):
        try:
            return self.model.objects.get(session_key=key_hash(self.session_key or ""), expire_date__gt=timezone.now())
        except (self.model.DoesNotExist, SuspiciousOperation):
            self._session_key = None
            return None

    async def _aget_session_from_db(self):
        try:
            return await self.model.objects.aget(
                session_key=key_hash(self.session_key or ""), expire_date__gt=timezone.now()
            )
        except (self.model.DoesNotExist, SuspiciousOperation):
            self._session_key = None
            return None

    def exists(self, session_key):
        return self.model.objects.filter(session_key=key_hash(session_key)).exists()

    async def aexists(self, session_key):
        return await self.model.objects.filter(session_key=key_hash(session_key)).aexists()

    def save(self, must_create=False):
        """Django's database save, which leaves a session's start (and a non-web caller's address) as it was."""
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        data[SEEN_KEY] = int(time.time())
        obj = self.create_model_instance(data)
        fields = None
        if not must_create:
            fields = ["session_data", "expire_date", "user", "last_seen"]
            fields += [name for name in ("ip", "user_agent") if getattr(obj, name)]
        using = router.db_for_write(self.model, instance=obj)
        try:
            with transaction.atomic(using=using):
                obj.save(force_insert=must_create, force_update=not must_create, update_fields=fields, using=using)
        except IntegrityError:
            if must_create:
                raise CreateError from None
            raise
        except DatabaseError:
            if not must_create:
                raise UpdateError from None
            raise
        self._cache_set(data, self.get_expiry_age())

    async def asave(self, must_create=False):
        await sync_to_async(self.save)(must_create)

    def delete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is not None:
            hashed = key_hash(session_key)
            self.model.objects.filter(session_key=hashed).delete()  # post_delete drops the cached data
            forget([hashed])  # and so does this when there was no row (raises if the cache is away)

    async def adelete(self, session_key=None):
        await sync_to_async(self.delete)(session_key)

    def create_model_instance(self, data):
        obj = super().create_model_instance(data)
        obj.session_key = key_hash(obj.session_key)
        user_id = data.get(SESSION_KEY)
        obj.user_id = get_user_model()._meta.pk.to_python(user_id) if user_id is not None else None
        obj.last_seen = timezone.now()
        obj.ip = self.ip
        obj.user_agent = self.user_agent
        return obj
