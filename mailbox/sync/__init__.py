"""The sync engine: fetch new mail from one POP3 account, store it, apply the policy.

Order per message (docs/design.md, invariant 1): RETR into a temp file -> fsync ->
verify size and SHA-256 -> parse -> raw file into the store -> rows committed.
Only after that may the message be DELE'd, and DELEs take effect only when
the server confirms QUIT; until then nothing is recorded as gone.

One module per concern:

- ``engine``: ``sync_account``, one sync start to finish (lease, session, outcome); ``open_listing``.
- ``lease``: the account's sync lease (invariant 4) and claiming accounts whose poll is due.
- ``session``: one POP3 session: log in, list, fetch, store, DELE, QUIT.
- ``diff``: the server's listing against what is stored (what is new, what is gone).
- ``ingest``: what fetching hands to storing (a retrieved message, a parsed batch).
- ``deletion``: which stored copies the policy says to DELE, and marking them gone.
- ``connection``: logging in to a server, and the account form's connection test.
- ``outcome``: ``SyncResult``, recording it on the account, backoff, what the user can do.
- ``check``: the no-change check: many accounts' "anything new?" at once on asyncio.
- ``schedule``: when to poll next (adaptive intervals, jitter) and the digest of a listing.
- ``crash``: crash points for the crash-safety tests.

The names below are the package's interface. A test that replaces a function
patches the module that defines and calls it (``mailbox.sync.lease.renew_lease``),
not these re-exports.
"""

from .connection import (
    ConnectionReport,
    client_for,
    oauth_client,
    password_login,
    refused_method_fix,
    test_connection,
    test_oauth_connection,
)
from .engine import open_listing, retry_failure, sync_account
from .lease import WORKER, LeaseLost, claim_due_accounts, claim_lease, release_lease, renew_lease
from .outcome import MAX_BACKOFF, SyncResult
from .session import QuotaFull

__all__ = [
    "MAX_BACKOFF",
    "WORKER",
    "ConnectionReport",
    "LeaseLost",
    "QuotaFull",
    "SyncResult",
    "claim_due_accounts",
    "claim_lease",
    "client_for",
    "oauth_client",
    "open_listing",
    "password_login",
    "refused_method_fix",
    "release_lease",
    "renew_lease",
    "retry_failure",
    "sync_account",
    "test_connection",
    "test_oauth_connection",
]
