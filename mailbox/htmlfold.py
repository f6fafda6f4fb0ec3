"""The trailing quotation and signature of an HTML mail, marked so the page can fold them behind "…".

Runs inside the sanitizer (``mailbox/sanitize.py``) on the parsed tree, before the allowlist pass
removes the markers mail programs leave (Outlook's ids, Gmail's data attributes). Everything from
the fold's start to the end of the message gets the class ``webpop-fold``; the frame document hides
that class unless the reader asked for the quoted text (``views_html``). Nothing is removed here.

Where the fold starts (the earliest that applies, and only after some content of the message's own,
so a message that is all quotation is never folded away):

- a quotation or signature block (``<blockquote type="cite">``, Gmail's ``gmail_quote`` and ``gmail_signature``,
  Thunderbird's ``moz-cite-prefix`` and ``moz-signature`` …) followed by nothing but blank space and
  other such blocks: a quotation in the middle of a reply stays visible, as it does in Gmail. The
  attribution just before a folded blockquote ("On … Bob wrote:") goes with it. A blockquote
  without ``type="cite"`` is a newsletter's pull quote or an indent, never folded;
- a point after which everything is quotation or signature: Outlook's ``divRplyFwdMsg`` and
  ``appendonsend``, and the signature separator "-- " (RFC 3676) on a line of its own.

Text after the start that sits directly in an element (not in a child element) is wrapped in a
``<span>`` carrying the class, so it can be hidden too. Running this again on its own output marks
the same elements and adds nothing (``sanitize.clean`` stays idempotent).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from xml.etree import ElementTree

FOLD_CLASS = "webpop-fold"

_QUOTE_CLASSES = frozenset(
    {
        "gmail_quote",
        "gmail_quote_container",
        "gmail_signature",
        "moz-cite-prefix",
        "moz-signature",
        "yahoo_quoted",
        "protonmail_quote",
        "protonmail_signature_block",
        "zmail_extra",
    }
)
_FROM_HERE_IDS = frozenset({"divrplyfwdmsg", "appendonsend"})
_SEPARATOR = re.compile(r"--[ \xa0]?\Z")
_SEPARATOR_BLOCKS = frozenset({"div", "p", "pre"})
# Elements whose content is never shown (the sanitizer drops them): their text is no content.
_OPAQUE = frozenset({"script", "style", "title", "textarea", "noscript", "noembed", "noframes", "iframe", "xmp"})
_TABLE_PARTS = frozenset({"table", "thead", "tbody", "tfoot", "tr"})
_BLANK = " \t\r\n\f\xa0\u200b\u200c\u200d\u2060\ufeff"
MAX_ATTRIBUTION_CHARS = 300

Element = ElementTree.Element


@dataclass
class _Candidate:
    element: Element
    kind: str  # "block": a quotation block; "from-here": everything after this point
    at: int  # event index where it begins
    end: int = -1  # for a block: the event index of its end
    after_text: bool = False  # the text after ``element`` (a <br>) begins the fold


def mark(root: Element) -> bool:
    """Mark the trailing quotation and signature under ``root``; True when there is one."""
    tree = _Tree(root)
    start = tree.fold_start()
    if start is None:
        return False
    element = start.element
    if start.after_text:
        element = _wrap_tail(tree.parents[element], element)
        tree.parents[element] = tree.parents[start.element]
    _mark_from(element, tree.parents)
    return True


def _visible(node) -> bool:
    return isinstance(node.tag, str) and node.tag not in _OPAQUE


def _blank(text: str | None) -> bool:
    return not text or not text.strip(_BLANK)


class _Tree:
    """The tree as events in document order, and where the message's own content lies."""

    def __init__(self, root: Element) -> None:
        self.parents: dict[Element, Element] = {}
        self.opened_at: dict[int, int] = {}
        self.candidates: list[_Candidate] = []
        self.content_upto: list[bool] = []  # content_upto[i]: own content before event i
        self.last_loose = -1  # the last event with content outside every quotation block
        self._walk(root)

    def _walk(self, root: Element) -> None:
        seen = False
        inside = 0  # quotation blocks open around the current event
        open_blocks: list[_Candidate | None] = []
        index = 0

        def event(content: bool) -> int:
            """Record the next point; ``content``: text or an image there (quoted or not)."""
            nonlocal seen, index
            self.content_upto.append(seen)
            if content and not inside:  # the message's own, not quoted
                seen = True
                self.last_loose = index
            index += 1
            return index - 1

        event(not _blank(root.text))
        stack = [iter(list(root))]
        path: list[Element] = []
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                if path:  # the element is done: its end, then its tail
                    closed = path.pop()
                    end = event(False)
                    block = open_blocks.pop()
                    if block is not None:
                        block.end = end
                        inside -= 1
                    self._tail(closed, inside, event)
                continue
            self.parents[child] = path[-1] if path else root
            if not _visible(child):
                self._tail(child, inside, event)
                continue
            kind = None if inside else _kind(child)
            at = event(child.tag == "img")
            self.opened_at[id(child)] = at
            block = None
            if kind:
                candidate = _Candidate(child, kind, at)
                self.candidates.append(candidate)
                if kind == "block":
                    block = candidate
            if child.tag == "blockquote" or block is not None:
                inside += 1
                block = block or _Candidate(child, "nested", at)
            open_blocks.append(block)
            path.append(child)
            event(not _blank(child.text))
            stack.append(iter(list(child)))

    def _tail(self, element: Element, inside: int, event) -> None:
        tail = element.tail
        if not inside and element.tag == "br" and tail and _separator(tail):
            at = event(False)
            self.candidates.append(_Candidate(element, "from-here", at, after_text=True))
        event(not _blank(tail))

    def fold_start(self) -> _Candidate | None:
        for candidate in self.candidates:
            if not self.content_upto[candidate.at]:
                continue
            if candidate.kind == "from-here":
                return candidate
            if candidate.end > self.last_loose:
                element = self._attribution(candidate.element)
                return candidate if element is None else _Candidate(element, "block", self.opened_at[id(element)])
        return None

    def _attribution(self, element: Element) -> Element | None:
        """The "On … Bob wrote:" block right before a folded blockquote, if there is one."""
        parent = self.parents.get(element)
        if element.tag != "blockquote" or parent is None:
            return None
        siblings = list(parent)
        for previous in reversed(siblings[: siblings.index(element)]):
            if not _blank(previous.tail):
                return None
            if not _visible(previous) or previous.tag == "br":
                continue
            words = "".join(previous.itertext()).strip(_BLANK)
            at = self.opened_at.get(id(previous))
            if words.endswith(":") and len(words) <= MAX_ATTRIBUTION_CHARS and at is not None and self.content_upto[at]:
                return previous
            return None
        return None


def _kind(element: Element) -> str | None:
    tag = element.tag
    if tag == "blockquote" and (element.get("type") or "").strip().lower() == "cite":
        return "block"
    classes = set((element.get("class") or "").lower().split())
    if classes & _QUOTE_CLASSES or (element.get("data-smartmail") or "").lower() == "gmail_signature":
        return "block"
    if (element.get("id") or "").lower() in _FROM_HERE_IDS:
        return "from-here"
    if tag in _SEPARATOR_BLOCKS and element.text and _separator(element.text):
        first = next(iter(element), None)
        if first is None or first.tag == "br":
            return "from-here"
    return None


def _separator(text: str) -> bool:
    """The signature separator "-- " (entities left as written by the parser are read here)."""
    return bool(_SEPARATOR.match(html.unescape(text).strip("\r\n")))


def _add_class(element: Element) -> None:
    classes = (element.get("class") or "").split()
    if FOLD_CLASS not in classes:
        element.set("class", " ".join([FOLD_CLASS, *classes]))


def _wrap_tail(parent: Element, element: Element) -> Element:
    """Move the text after ``element`` into a span of its own, right after it; returns the span."""
    span = Element("span")
    span.text, element.tail = element.tail, None
    parent.insert(list(parent).index(element) + 1, span)
    return span


def _mark_from(start: Element, parents: dict[Element, Element]) -> None:
    """Mark ``start`` and everything after it, up to the end of the tree."""
    element = start
    while True:
        parent = parents.get(element)
        siblings = list(parent) if parent is not None else [element]
        index = siblings.index(element)
        for node in siblings[index:]:
            if (node is not element or element is start) and isinstance(node.tag, str):
                _add_class(node)
            if parent is not None and parent.tag not in _TABLE_PARTS and not _blank(node.tail):
                span = _wrap_tail(parent, node)  # loose text after it: hidden with it
                _add_class(span)
        if parent is None or parent not in parents:
            return
        element = parent
