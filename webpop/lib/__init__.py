"""Shared infrastructure every app may use: it imports no app (`.importlinter` checks that).

Network guard (``netguard``, ``guarded_http``, ``pinned_http``), client addresses (``netaddr``),
rate limiting, leases, env parsing, TLS contexts and certificate fingerprints (``tls``) and the
page cache's versions (``pagecache``).
"""
