"""Session engine: Django's database sessions in users.Session, with user, browser and address.

Set as SESSION_ENGINE. Rows are keyed by the SHA-256 of the session key, never the
key itself, so a copy of the database (or an admin page) holds no usable session
cookie. The user link lets people list and end their own sessions, and makes
deleting a user delete their sessions too.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone


def key_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


class SessionStore(DbSessionStore):
    # Set by users.middleware.SessionMiddleware for web requests; empty for other callers.
    ip: str | None = None
    user_agent: str = ""

    def __init__(self, session_key=None):
        super().__init__(session_key)
        self.row = None  # the row as loaded, for created_at/last_seen

    @classmethod
    def get_model_class(cls):
        from .models import Session

        return Session

    def _get_session_from_db(self):
        try:
            self.row = self.model.objects.get(
                session_key=key_hash(self.session_key or ""), expire_date__gt=timezone.now()
            )
        except (self.model.DoesNotExist, SuspiciousOperation):
            self.row = None
            self._session_key = None
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

    def delete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is not None:
            self.model.objects.filter(session_key=key_hash(session_key)).delete()

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
        return obj
