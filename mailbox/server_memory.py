"""What a mail account keeps about its POP3 server between sessions, read and written.

The columns live on ``accounts.MailAccount`` (plain JSON and an encrypted string); their
types are the POP3 client's, so the conversions live here, beside the code that logs in.
"""

from __future__ import annotations

import json

from accounts import crypto
from accounts.models import MailAccount

from .pop3 import ScramCache, ServerProfile


def server_profile(account: MailAccount) -> ServerProfile:
    """What the last good session learned about the server: the next one skips CAPA."""
    return ServerProfile.from_json(account.server_profile)


def scram_cache(account: MailAccount) -> ScramCache:
    """The stored cache; an empty one when there is none or it cannot be read (it is only a shortcut)."""
    if not account.scram_cache_encrypted:
        return ScramCache()
    try:
        return ScramCache.from_json(json.loads(crypto.decrypt(account.scram_cache_encrypted)))
    except (crypto.DecryptionError, ValueError):
        return ScramCache()


def encrypt_scram_cache(cache: ScramCache) -> str:
    """The column value for ``cache``: SaltedPasswords are password-equivalent, so encrypted."""
    return crypto.encrypt(json.dumps(cache.to_json())) if len(cache) else ""
