"""What sender trust and inbox tabs cost per message, in the pure modules that do the work.

Tabs: every message of the labelled corpus (tests/tabs_corpus) parsed by ``mime.parse`` as ingest
parses it, then sorted by ``categories.classify``; the classifier's time beside the parse's, and the
corpus's Promotions precision.

Sender trust: an ``Authentication-Results`` header read with ``trust.from_authentication_results``,
rspamd's symbols read with ``trust.from_rspamd``, and ``trust.assess`` for a message against a user's
5,000 known domains (contacts and own addresses): given as a list (every skeleton computed, or taken
from the per-worker cache, and compared on each view), and given as ``trust.KnownDomains``, the skeleton
index (one lookup per view; the web app keeps each address's skeleton in its ContactEmail row and reads
only the rows sharing the sender's skeleton).

Best of three rounds each; prints Markdown tables.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailbox import categories, mime  # noqa: E402
from spam import trust  # noqa: E402

CORPUS = REPO / "tests" / "tabs_corpus"
AUTH_RESULTS = (
    "mx.example.net; dkim=pass header.d=example.com header.s=s1 header.b=abcdEFGH; "
    "spf=pass smtp.mailfrom=bounce@mail.example.com; dmarc=pass (p=reject dis=none) header.from=example.com"
)
SYMBOLS = {
    "R_DKIM_ALLOW": ["example.com:s=s1"],
    "R_SPF_ALLOW": ["+ip4:192.0.2.0/24"],
    "DMARC_POLICY_ALLOW": ["example.com", "reject"],
}


def best(func, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def tabs() -> None:
    with open(CORPUS / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    raws = [(CORPUS / "mail" / row["file"]).read_bytes() for row in rows]
    parsed = [mime.parse(raw) for raw in raws]
    known = [row["known_sender"] == "yes" for row in rows]

    parse_s = best(lambda: [mime.parse(raw) for raw in raws])
    classify_s = best(
        lambda: [categories.classify(p.category_headers, known_sender=k) for p, k in zip(parsed, known, strict=True)]
    )
    got = [categories.classify(p.category_headers, known_sender=k).slug for p, k in zip(parsed, known, strict=True)]
    promoted = [row["label"] for row, tab in zip(rows, got, strict=True) if tab == "promotions"]
    precision = promoted.count("promotions") / len(promoted)
    pairs = list(zip(rows, got, strict=True))
    personal_elsewhere = sum(1 for row, tab in pairs if row["label"] == "primary" and tab != "primary")
    n = len(rows)
    print(f"### Inbox tabs: {n} labelled messages (tests/tabs_corpus)\n")
    print("| step | µs per message |")
    print("| --- | ---: |")
    print(f"| `mime.parse` (what ingest does anyway) | {parse_s / n * 1e6:.0f} |")
    print(f"| `categories.classify` (what tabs add) | {classify_s / n * 1e6:.1f} |")
    print(f"\nPromotions precision {precision:.3f}; personal mail outside Primary: {personal_elsewhere}.\n")


def sender_trust() -> None:
    known = [f"domain{i}.example" for i in range(4_999)] + ["paypal.com"]
    lookalike_from = "service@p\u0430ypal.com"  # Cyrillic а
    reps = 200
    ar_s = best(lambda: [trust.from_authentication_results([AUTH_RESULTS], "mx.example.net") for _ in range(reps)])
    rs_s = best(lambda: [trust.from_rspamd(SYMBOLS) for _ in range(reps)])
    auth = trust.from_authentication_results([AUTH_RESULTS], "mx.example.net")

    def assess(known_domains):
        return trust.assess("PayPal", lookalike_from, auth, reply_to="", known_domains=known_domains)

    colds = []
    for _ in range(3):
        trust.skeleton.cache_clear()
        start = time.perf_counter()
        result = assess(known)
        colds.append(time.perf_counter() - start)
    assert result.warnings, "the lookalike must be found"
    warm = best(lambda: assess(known))
    trust.skeleton.cache_clear()
    build = best(lambda: trust.KnownDomains(known), rounds=1)
    index = trust.KnownDomains(known)
    trust.skeleton.cache_clear()
    indexed_cold = best(lambda: assess(index), rounds=1)
    assert assess(index).warnings, "the lookalike must be found"
    indexed = best(lambda: [assess(index) for _ in range(reps)]) / reps
    print("### Sender trust: one message, a user with 5,000 known domains\n")
    print("| step | ms per message |")
    print("| --- | ---: |")
    print(f"| read an `Authentication-Results` header (authres) | {ar_s / reps * 1e3:.3f} |")
    print(f"| read rspamd's symbols | {rs_s / reps * 1e3:.4f} |")
    print(f"| judge the sender against the domains as a list, no skeletons cached | {min(colds) * 1e3:.1f} |")
    print(f"| judge the sender against the domains as a list, skeletons cached | {warm * 1e3:.1f} |")
    print(f"| judge the sender with the skeleton index, nothing cached | {indexed_cold * 1e3:.3f} |")
    print(f"| judge the sender with the skeleton index | {indexed * 1e3:.3f} |")
    print(f"| build the index of all 5,000 (once; webapp: stored with each address) | {build * 1e3:.1f} |")
    print()


if __name__ == "__main__":
    tabs()
    sender_trust()
