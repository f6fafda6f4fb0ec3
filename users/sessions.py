"""Session engine: Django's database sessions in users.Session, with user, browser and address.

Set as SESSION_ENGINE. The user link lets people list and end their own sessions,
and makes deleting a user delete their sessions too.
"""

from __future__ import annotations

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.utils import timezone


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
        self.row = super()._get_session_from_db()
        return self.row

    def create_model_instance(self, data):
        obj = super().create_model_instance(data)
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
