"""Run every benchmark script in bench/ and rewrite bench/RESULTS.md.

Each script prints a Markdown table (its baselines side by side, with ratios)
on stdout. This runner collects them under one heading per script, with the
command, date and machine, so the figures are always reproducible.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def main() -> int:
    scripts = sorted(p for p in BENCH.glob("*.py") if p.name not in {"run_all.py"} and not p.name.startswith("_"))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `make bench` (`python bench/run_all.py`) on {now}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
    ]
    if not scripts:
        lines.append("No benchmarks yet.")
    failed = False
    for script in scripts:
        print(f"== {script.name}", flush=True)
        proc = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, check=False)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr[-4000:])
        lines += [f"## {script.stem}", "", f"Command: `python bench/{script.name}`", ""]
        if proc.returncode == 0:
            lines += [proc.stdout.rstrip(), ""]
        else:
            failed = True
            lines += [f"Failed with status {proc.returncode}:", "", "```", proc.stderr.strip()[-2000:], "```", ""]
    (BENCH / "RESULTS.md").write_text("\n".join(lines).rstrip() + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
