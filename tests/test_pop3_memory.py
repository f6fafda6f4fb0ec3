"""A 50 MB message is retrieved in constant memory by either driver (measured in a subprocess)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.dovecot

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import asyncio, json, sys
from mailbox.pop3 import Pop3Client
from mailbox.pop3.aio import AsyncPop3Client

driver, host, port, ca, user, password, out_path = sys.argv[1:]
def status_kib(field):
    # ru_maxrss would carry the forking parent's peak; VmHWM is this process's own.
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
def reset_peak():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak (VmHWM) to the current RSS
if driver == "blocking":
    with Pop3Client(host, int(port), "ssl", ca_file=ca, allow_private=True, timeout=30) as pop:
        pop.login(user, password)
        reset_peak()
        before = status_kib("VmRSS")
        with open(out_path, "wb") as out:
            result = pop.retr_to(1, out)
        peak = status_kib("VmHWM")
        pop.quit()
else:
    async def fetch():
        async with AsyncPop3Client(host, int(port), "ssl", ca_file=ca, allow_private=True, timeout=30) as pop:
            await pop.login(user, password)
            reset_peak()
            before = status_kib("VmRSS")
            with open(out_path, "wb") as out:
                result = await pop.retr_to(1, out)
            peak = status_kib("VmHWM")
            await pop.quit()
        return before, peak, result
    before, peak, result = asyncio.run(fetch())
print(json.dumps({"before": before, "peak": peak, "size": result.size, "sha256": result.sha256}))
"""


@pytest.mark.parametrize("driver", ["blocking", "asyncio"])
def test_fifty_megabyte_message_uses_under_16_mb_extra_memory(dovecot, pop_user, tmp_path, driver):
    # One 10 MB line and 40 MB of ordinary lines, some dot-stuffed.
    line = b"." + b"x" * 998 + b"\r\n"
    body = b"A" * (10 * 1024 * 1024) + b"\r\n" + line * (40 * 1024 * 1024 // len(line))
    raw = b"Subject: big\r\nFrom: a@example.net\r\n\r\n" + body
    pop_user.deliver(raw)
    out = tmp_path / "big.eml"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, driver, "localhost", str(pop_user.server.pop3s_port),
         str(pop_user.server.ca_file), pop_user.name, pop_user.password, str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["size"] == len(raw) == out.stat().st_size
    assert out.read_bytes() == raw
    growth_kib = report["peak"] - report["before"]
    assert growth_kib < 16 * 1024, f"peak RSS grew by {growth_kib} KiB: {report}"
