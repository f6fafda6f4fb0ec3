"""The sign-in's state between requests, kept in the user's (server-side) session.

A started sign-in is remembered by its ``state`` with the PKCE verifier and
nonce; the callback takes it out exactly once. A finished sign-in waits,
encrypted, for the user to confirm the new account's settings.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

from accounts import crypto

from .actions import SignIn
from .client import AuthorizationRequest, TokenSet

PENDING_KEY = "oauth_pending"
SIGNED_IN_KEY = "oauth_signed_in"
PENDING_SECONDS = 15 * 60  # time to get through the provider's consent screens
MAX_PENDING = 5  # sign-ins started in other tabs stay valid, within reason


def remember_request(session, provider: str, request: AuthorizationRequest, *, account_id: int | None = None) -> None:
    pending = _live(session.get(PENDING_KEY) or {})
    pending[request.state] = {
        "provider": provider,
        "verifier": crypto.encrypt(request.code_verifier),
        "nonce": request.nonce,
        "account": account_id,
        "at": time.time(),
    }
    if len(pending) > MAX_PENDING:
        for state in sorted(pending, key=lambda s: pending[s]["at"])[: len(pending) - MAX_PENDING]:
            del pending[state]
    session[PENDING_KEY] = pending


def take_request(session, state: str) -> dict | None:
    """The started sign-in ``state`` answers, removed so it cannot be replayed; None if unknown or stale."""
    pending = _live(session.get(PENDING_KEY) or {})
    found = pending.pop(state, None) if state else None
    session[PENDING_KEY] = pending
    if found is None:
        return None
    return {**found, "verifier": crypto.decrypt(found["verifier"])}


def _live(pending: dict) -> dict:
    cutoff = time.time() - PENDING_SECONDS
    return {state: item for state, item in pending.items() if item.get("at", 0) >= cutoff}


def keep_sign_in(session, sign_in: SignIn) -> None:
    data = {
        "provider": sign_in.provider,
        "email": sign_in.email,
        "subject": sign_in.subject,
        "tokens": asdict(sign_in.tokens),
        "at": time.time(),
    }
    session[SIGNED_IN_KEY] = crypto.encrypt(json.dumps(data))


def signed_in(session) -> SignIn | None:
    token = session.get(SIGNED_IN_KEY)
    if not token:
        return None
    try:
        data = json.loads(crypto.decrypt(token))
    except (crypto.DecryptionError, ValueError):
        return None
    if data.get("at", 0) < time.time() - PENDING_SECONDS:
        return None
    return SignIn(data["provider"], data["email"], data["subject"], TokenSet(**data["tokens"]))


def forget_sign_in(session) -> None:
    session.pop(SIGNED_IN_KEY, None)
