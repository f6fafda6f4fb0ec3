"""Content-Security-Policy on top of django-csp: the policies views answer with, and a stable header.

django-csp builds a header from a set of directive names, so their order changes from one process to the
next (hash randomisation). Browsers do not care; people reading headers, logs and tests do, so the
headers webpop sends list the directives in the order the policy declares them.
"""

from __future__ import annotations

from collections.abc import Iterable

from csp.constants import NONE, SELF
from csp.decorators import csp
from csp.utils import build_policy

__all__ = ["ASSET", "NONE", "SANDBOX", "SELF", "header", "in_order", "policy"]

# A download or raw text: never run as a document of our origin.
SANDBOX = {"sandbox": True}
# An image (or other file) shown inline: it loads nothing and runs nothing.
ASSET = {"default-src": [NONE], "sandbox": True}


def in_order(header: str, names: Iterable[str]) -> str:
    """The header's directives in the order ``names`` lists them (others after, as they were)."""
    rank = {name: i for i, name in enumerate(names)}
    parts = [part for part in header.split(";") if part.strip()]
    parts.sort(key=lambda part: rank.get(part.split()[0], len(rank)))
    return "; ".join(part.strip() for part in parts)


def header(directives: dict) -> str:
    """The header a view decorated with ``policy(directives)`` answers with."""
    return in_order(build_policy(config=directives), directives)


def policy(directives: dict):
    """View decorator: this view answers with ``directives`` instead of the app's policy."""
    return csp(directives)
