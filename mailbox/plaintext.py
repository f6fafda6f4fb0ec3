"""A plain-text body for reading: paragraphs, links, quotations, and what to fold behind "…".

Pure (no Django, no markup): ``parse(text)`` gives the structure that
``templates/mailbox/_plain.html`` prints, escaping every piece of text. format=flowed text
arrives already joined (``mime.unflow``, RFC 3676 with DelSp, at parse time), so a flowed
paragraph is one line here and the page wraps it to the reader's width; fixed text keeps its
line breaks.

- Paragraphs are runs of lines between blank lines; the page gives each ``dir="auto"``, so
  Arabic or Hebrew paragraphs run right to left among English ones.
- Quotations (lines starting with ">", nested by their count) become nested blocks, their
  markers dropped, blank lines inside them kept as paragraph breaks.
- Links: ``http:``, ``https:`` and ``mailto:`` only, found in the text as written; trailing
  punctuation and unbalanced closing brackets stay outside the link, and a link never contains
  spaces, control characters or bidirectional controls (which could make it read as another
  address than it goes to).
- The fold: the signature (from a "-- " line, RFC 3676 4.3) and a trailing quotation (with its
  "On … wrote:" line) or an Outlook "Original Message" block, to the end. Only after some text of
  the message's own: a message that is all quotation is shown whole.

Very long texts are shown as they are, without this structure (``MAX_CHARS``, ``MAX_BLOCKS``):
the work per view stays bounded.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

VERSION = 1  # of what parse() returns: views_html.plain_body keeps its results under it
MAX_DEPTH = 6  # deeper quotation is shown at this depth
MAX_CHARS = 400_000
MAX_BLOCKS = 4_000
MAX_ATTRIBUTION_CHARS = 300

_QUOTE_PREFIX = re.compile(r"(?:>[ \t]?)+")
_SIGNATURE = frozenset({"-- ", "--"})
_ORIGINAL = re.compile(
    r"-{3,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original)\s*-{3,}\Z", re.I
)
_RULE = re.compile(r"_{20,}\Z")
_HEADER_LINE = re.compile(r"(?:from|von|de|da|van):\s", re.I)
_ATTRIBUTION_START = re.compile(r"(?:on|am|le|el|il|op|em|den|w dniu)\s", re.I)
# A link runs to the first character that cannot be in one: spaces, controls, quotes, angle
# brackets, and the invisible and bidirectional controls.
_LINK = re.compile(
    r"(?<![\w.+-])(?:https?://[^\s/?#<>\"'`\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
    r"|mailto:[^\s@<>\"'`\x00-\x1f\x7f]+@)"
    r"[^\s<>\"'`\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]*",
    re.I,
)
_TRAILING = ".,;:!?*'\""
_CLOSING = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True)
class Piece:
    """Text, or a link when ``href`` is set (then ``href == text``)."""

    text: str
    href: str = ""


@dataclass
class Paragraph:
    pieces: list[Piece]
    quote = False


@dataclass
class Quote:
    items: list[Paragraph | Quote] = field(default_factory=list)
    direction: str = "auto"  # "ltr", "rtl" or "auto": the first strong letter's
    quote = True


@dataclass
class PlainText:
    items: list[Paragraph | Quote]
    folded: list[Paragraph | Quote]  # the signature and trailing quotation, behind "…"
    direction: str = "auto"


def parse(text: str) -> PlainText:
    text = (text or "").rstrip()
    if len(text) > MAX_CHARS:
        return PlainText(items=[Paragraph([Piece(text)])], folded=[], direction=direction(text))
    lines = [_split_quote(line) for line in text.split("\n")]
    start = _fold_start(lines)
    shown, folded = _blocks(lines[:start]), _blocks(lines[start:])
    if shown is None or folded is None:
        return PlainText(items=[Paragraph([Piece(text)])], folded=[], direction=direction(text))
    return PlainText(items=shown, folded=folded, direction=direction(text))


def direction(text: str) -> str:
    """ "rtl" or "ltr" by the first letter with a strong direction (as ``dir="auto"`` decides), else "auto"."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return "auto"


def links(text: str) -> list[Piece]:
    """``text`` cut into plain pieces and links."""
    pieces: list[Piece] = []
    position = 0
    for match in _LINK.finditer(text):
        url = _trim(match.group())
        if not url or url.lower() in ("http://", "https://") or url.endswith(":"):
            continue
        start, end = match.start(), match.start() + len(url)
        if start > position:
            pieces.append(Piece(text[position:start]))
        pieces.append(Piece(url, href=url))
        position = end
    if position < len(text):
        pieces.append(Piece(text[position:]))
    return pieces


def _trim(url: str) -> str:
    """Leave sentence punctuation and unbalanced closing brackets outside the link."""
    while url:
        last = url[-1]
        unbalanced = last in _CLOSING and url.count(last) > url.count(_CLOSING[last])
        if last not in _TRAILING and not unbalanced:
            break
        url = url[:-1]
    return url


def _split_quote(line: str) -> tuple[int, str]:
    """(quotation depth, the line without its ">" markers)."""
    match = _QUOTE_PREFIX.match(line)
    if not match:
        return 0, line
    return match.group().count(">"), line[match.end() :]


def _blank(line: tuple[int, str]) -> bool:
    return not line[1].strip()


def _fold_start(lines: list[tuple[int, str]]) -> int:
    """Where the signature or trailing quotation begins (``len(lines)`` when there is none)."""
    own_text = False
    rest = len(lines)  # the signature or an Outlook "Original Message": all after it folds
    for index, (depth, content) in enumerate(lines):
        stripped = content.strip()
        if (
            depth == 0
            and own_text
            and (
                content in _SIGNATURE
                or _ORIGINAL.match(stripped)
                or (_RULE.match(stripped) and _next_is_header(lines, index))
            )
        ):
            rest = index
            break
        own_text = own_text or (depth == 0 and bool(stripped))
    # A quotation followed by nothing but the signature folds with it (a top-posted reply).
    quoted = _trailing_quotation(lines[:rest])
    return rest if quoted is None else quoted


def _next_is_header(lines: list[tuple[int, str]], index: int) -> bool:
    following = next((line for line in lines[index + 1 :] if not _blank(line)), None)
    return following is not None and following[0] == 0 and bool(_HEADER_LINE.match(following[1]))


def _trailing_quotation(lines: list[tuple[int, str]]) -> int | None:
    """The start of the quotation that ends the text, with its attribution line(s), if any."""
    end = len(lines)
    while end and _blank(lines[end - 1]):
        end -= 1
    start = end
    while start and (lines[start - 1][0] > 0 or _blank(lines[start - 1])):
        start -= 1
    while start < end and _blank(lines[start]):
        start += 1
    if start >= end:
        return None
    before = start
    while before and _blank(lines[before - 1]):
        before -= 1
    if before and lines[before - 1][1].rstrip().endswith(":"):
        attribution = lines[before - 1][1].strip()
        if len(attribution) <= MAX_ATTRIBUTION_CHARS:
            start = before - 1
            previous = lines[start - 1] if start else None
            if (
                previous
                and previous[0] == 0
                and _ATTRIBUTION_START.match(previous[1])
                and len(previous[1]) + len(attribution) <= MAX_ATTRIBUTION_CHARS
            ):
                start -= 1
    if not any(depth == 0 and content.strip() and content not in _SIGNATURE for depth, content in lines[:start]):
        return None  # nothing of the message's own before it
    return start


def _blocks(lines: list[tuple[int, str]]) -> list[Paragraph | Quote] | None:
    """Nested paragraphs and quotations; None when there would be more than ``MAX_BLOCKS``."""
    top: list[Paragraph | Quote] = []
    stack: list[list] = [top]  # stack[d]: the items at quotation depth d
    quotes: list[Quote] = []
    paragraph: list[str] = []
    count = 0

    def flush() -> None:
        nonlocal count
        if paragraph:
            stack[-1].append(Paragraph(links("\n".join(paragraph))))
            paragraph.clear()
            count += 1

    for depth, content in lines:
        if not content.strip():
            flush()  # a blank line ends the paragraph, not the quotation
            continue
        depth = min(depth, MAX_DEPTH)
        if depth != len(stack) - 1:
            flush()
            del stack[depth + 1 :]
            del quotes[depth:]
            while len(stack) <= depth:
                quote = Quote()
                stack[-1].append(quote)
                stack.append(quote.items)
                quotes.append(quote)
        paragraph.append(content)
        if count > MAX_BLOCKS:
            return None
    flush()
    _set_directions(top)
    return top


def _set_directions(items: list[Paragraph | Quote]) -> None:
    for item in items:
        if isinstance(item, Quote):
            item.direction = direction(_text(item.items))
            _set_directions(item.items)


def _text(items: list[Paragraph | Quote]) -> str:
    out = []
    for item in items:
        if isinstance(item, Quote):
            out.append(_text(item.items))
        else:
            out.extend(piece.text for piece in item.pieces)
    return "".join(out)
