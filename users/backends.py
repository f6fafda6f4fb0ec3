"""The model backend, with the signed-in user read from the cache.

Every signed-in page asks for ``request.user``: ``get_user`` reads the user's cached
copy, else the database (and caches it). Cached copies are dropped whenever the user
row changes (post_save and post_delete, connected in users.apps; ``forget`` for
QuerySet.update calls, which send no signal) and are used for at most USER_TTL
seconds in any case.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from functools import cache as memoize

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.db.models import Q

from webpop.cache import drop_now_and_at_commit, report_unavailable

logger = logging.getLogger(__name__)

BACKEND = "users.backends.CachedModelBackend"
# Sessions signed in before this backend existed name Django's; users.sessions reads them as this one.
LEGACY_BACKEND = "django.contrib.auth.backends.ModelBackend"
USER_TTL = 300


@memoize
def _schema() -> str:
    # A pickled user only fits the model it came from: a new field after a deploy makes a new key.
    fields = ",".join(f.attname for f in get_user_model()._meta.concrete_fields)
    return hashlib.sha256(fields.encode()).hexdigest()[:8]


def _key(user_id) -> str:
    return f"auth-user:{_schema()}:{user_id}"


class CachedModelBackend(ModelBackend):
    def get_user(self, user_id):
        key = _key(user_id)
        try:
            user = cache.get(key)
        except Exception as exc:  # the cache is down: the database still answers
            report_unavailable(logger, "user cache", exc)
            return super().get_user(user_id)
        if user is None:
            user = super().get_user(user_id)  # None for a missing or inactive user: not cached
            if user is not None:
                try:
                    cache.set(key, user, USER_TTL)
                except Exception as exc:
                    report_unavailable(logger, "user cache", exc)
            return user
        return user if self.user_can_authenticate(user) else None


def forget(user_ids: Iterable) -> None:
    """Drop cached copies of these users (webpop.cache.drop_now_and_at_commit).

    Raises if the cache is unreachable: a disabled user must not stay signed in through a stale copy.
    """
    drop_now_and_at_commit([_key(pk) for pk in user_ids])


def user_changed(sender, instance, update_fields=None, **kwargs) -> None:
    # Signing in saves last_login alone, which no check reads from a cached copy: skipping the drop
    # lets people sign in while the cache is away (a drop would raise).
    if update_fields is not None and set(update_fields) == {"last_login"}:
        return
    forget([instance.pk])


# A cached user carries the permissions the model backend read for it, so a change to who holds
# what drops the cached copies of everyone it touches: taking a permission away works at once.


def _members(group_ids) -> list:
    return list(get_user_model().objects.filter(groups__in=list(group_ids)).values_list("pk", flat=True).distinct())


def user_grants_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """m2m_changed of User.groups and User.user_permissions, from either side."""
    if not reverse:  # the user's own relation
        if action in ("post_add", "post_remove", "post_clear"):
            forget([instance.pk])
    elif action in ("post_add", "post_remove"):
        forget(pk_set or [])
    elif action == "pre_clear":  # the group or permission loses all its users: who they are, before they go
        forget(instance.user_set.values_list("pk", flat=True))


def group_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """m2m_changed of Group.permissions, from either side."""
    if not reverse:
        if action in ("post_add", "post_remove", "post_clear"):
            forget(_members([instance.pk]))
    elif action in ("post_add", "post_remove"):
        forget(_members(pk_set or []))
    elif action == "pre_clear":
        forget(_members(instance.group_set.values_list("pk", flat=True)))


def group_deleted(sender, instance, **kwargs) -> None:
    forget(_members([instance.pk]))


def permission_deleted(sender, instance, **kwargs) -> None:
    holders = get_user_model().objects.filter(Q(user_permissions=instance) | Q(groups__permissions=instance))
    forget(holders.values_list("pk", flat=True).distinct())
