"""HTTP(S) connections to addresses ``webpop.lib.netguard`` checked beforehand, never to the name.

``http.client`` would resolve the host again at connect time; a DNS answer that changed
since the check (DNS rebinding) could then reach an internal service. These connect to
the checked addresses and still send the name in ``Host`` and verify it in TLS (SNI and
the certificate against the system's CAs).
"""

from __future__ import annotations

import http.client
import ssl

from . import netguard


class PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = netguard.connect_first(self._addresses, self.port, timeout=self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._addresses = addresses

    def connect(self) -> None:
        sock = netguard.connect_first(self._addresses, self.port, timeout=self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
