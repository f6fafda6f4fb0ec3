"""Inbox tabs on a labelled corpus (tests/tabs_corpus, written by its generate.py): Promotions is
precise and personal mail stays in Primary. Read through mime.parse, as ingest reads it."""

from __future__ import annotations

import csv
from pathlib import Path

from mailbox import categories, mime

CORPUS = Path(__file__).parent / "tabs_corpus"
NAMES = [c.slug for c in categories.Category]


def _confusion() -> tuple[dict[tuple[str, str], int], list[tuple[str, str, str]]]:
    matrix = {(a, b): 0 for a in NAMES for b in NAMES}
    wrong = []
    with open(CORPUS / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            parsed = mime.parse((CORPUS / "mail" / row["file"]).read_bytes())
            got = categories.classify(parsed.category_headers, known_sender=row["known_sender"] == "yes").slug
            matrix[row["label"], got] += 1
            if got != row["label"]:
                wrong.append((row["file"], row["label"], got))
    return matrix, wrong


def test_corpus_precision_and_primary():
    matrix, wrong = _confusion()
    total = sum(matrix.values())
    print(f"\n{total} messages; rows: label, columns: tab")
    print(" " * 12 + "".join(name.rjust(12) for name in NAMES))
    for label in NAMES:
        print(label.ljust(12) + "".join(str(matrix[label, got]).rjust(12) for got in NAMES))
    for name, label, got in wrong:
        print(f"  {name}: {label} -> {got}")
    assert total >= 200
    assert all(sum(matrix[label, got] for got in NAMES) >= 30 for label in NAMES)  # every kind well represented
    promoted = sum(matrix[label, "promotions"] for label in NAMES)
    precision = matrix["promotions", "promotions"] / promoted
    recall = matrix["promotions", "promotions"] / sum(matrix["promotions", got] for got in NAMES)
    print(f"Promotions: precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.9
    assert recall >= 0.8  # a classifier that sends nothing to Promotions is no answer
    assert [got for got in NAMES if got != "primary" and matrix["primary", got]] == []


def test_known_sender_is_primary_unless_a_list():
    bulk = {"from": "Shop <news@shop.example>", "subject": "50% off", "list-unsubscribe": "<https://shop.example/u>"}
    assert categories.classify(bulk) is categories.Category.PROMOTIONS
    assert categories.classify(bulk, known_sender=True) is categories.Category.PRIMARY
    listed = {"from": "a@b.example", "list-id": "<l.example>", "list-post": "<mailto:l@example>", "subject": "Re: x"}
    assert categories.classify(listed, known_sender=True) is categories.Category.FORUMS


def test_no_markers_is_primary_whatever_the_words():
    for subject in ("Your order has shipped", "50% off everything", "Password reset", "[ANN] release"):
        assert (
            categories.classify({"from": "Anna <anna@example.org>", "subject": subject}) is categories.Category.PRIMARY
        )


def test_markers():
    C = categories.Category
    assert categories.classify({"from": "no-reply@bank.example", "subject": "Security alert"}) is C.UPDATES
    assert categories.classify({"from": "x@y.example", "precedence": "bulk", "subject": "Spring news"}) is C.PROMOTIONS
    receipt = {"from": "shop@y.example", "x-ses-outgoing": "1", "list-unsubscribe": "<https://y.example/u>"}
    assert categories.classify({**receipt, "subject": "Your receipt #123"}) is C.UPDATES
    announce = {"from": "a@y.example", "list-id": "<ann.y.example>", "list-post": "NO", "x-mailer": "Mailchimp"}
    assert categories.classify({**announce, "subject": "Issue 4"}) is C.PROMOTIONS
    assert categories.classify({"from": "n@forum.example", "x-discourse-post-id": "4", "subject": "t"}) is C.FORUMS
    assert categories.classify({}) is C.PRIMARY
    assert categories.classify({"from": "\x00<<>>@@", "subject": "\ud800"}) is C.PRIMARY
