"""Container health check: GET /readyz as the reverse proxy would send it (exit 0 when ready).

Sends a host name from ALLOWED_HOSTS and X-Forwarded-Proto: https, so the check
passes the host validation and the HTTPS redirect that production settings apply.
"""

import os
import sys
import urllib.error
import urllib.request

host = next((h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost").split(",") if h.strip()), "localhost")
host = host.lstrip(".").replace("*", "health") or "localhost"
request = urllib.request.Request(
    f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/readyz",
    headers={"Host": host, "X-Forwarded-Proto": "https"},
)
try:
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (a fixed http URL)
        sys.exit(0 if response.status == 200 else 1)
except (urllib.error.URLError, OSError) as exc:
    print(f"not ready: {exc}", file=sys.stderr)
    sys.exit(1)
