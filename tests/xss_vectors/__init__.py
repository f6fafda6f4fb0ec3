"""The XSS vectors of vectors.txt, by class."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Vector:
    id: str
    cls: str
    html: str


def load() -> list[Vector]:
    vectors: list[Vector] = []
    cls = None
    counts: dict[str, int] = {}
    for line in (HERE / "vectors.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("== "):
            cls = line[3:].strip()
            continue
        assert cls, "a vector before any class"
        counts[cls] = counts.get(cls, 0) + 1
        html = re.sub(r"\{U\+([0-9A-Fa-f]{4,6})\}", lambda m: chr(int(m.group(1), 16)), line)
        vectors.append(Vector(f"{cls}-{counts[cls]}", cls, html))
    return vectors


def by_class() -> dict[str, list[Vector]]:
    classes: dict[str, list[Vector]] = {}
    for vector in load():
        classes.setdefault(vector.cls, []).append(vector)
    return classes
