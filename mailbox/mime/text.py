"""Body text: readable text of HTML (snippets, search), format=flowed joined, snippets."""

from __future__ import annotations

import html
import re

from .charsets import _INVISIBLE, _WS

HTML_TO_TEXT_INPUT_LIMIT = 500_000
SNIPPET_LENGTH = 200

_SKIP_START = re.compile(r"<!--|<(script|style|head|title|template|xml)\b", re.IGNORECASE)
_SKIP_END = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE)
    for name in ("script", "style", "head", "title", "template", "xml")
}
_BLOCK_TAG = re.compile(r"<(?:br|/?p|/?div|/t[rdh]|/li|/h[1-6]|/?table|/?blockquote|hr)\b[^<>]*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[/!?a-zA-Z][^<>]*>")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body, for snippets and search (not for display)."""
    text = (markup or "")[:HTML_TO_TEXT_INPUT_LIMIT]
    if "<" in text:
        text = _drop_invisible_blocks(text)
        text = _BLOCK_TAG.sub("\n", text)
        text = _ANY_TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def _drop_invisible_blocks(text: str) -> str:
    """Remove comments, scripts, styles and the head in linear time, whatever is unclosed."""
    out, pos = [], 0
    while True:
        match = _SKIP_START.search(text, pos)
        if not match:
            out.append(text[pos:])
            break
        out.append(text[pos : match.start()])
        if match.group(1) is None:  # comment
            end = text.find("-->", match.end())
            pos = len(text) if end < 0 else end + 3
            continue
        name = match.group(1).lower()
        close = _SKIP_END[name].search(text, match.end())
        if close:
            pos = close.end()
        elif name in ("script", "style", "xml"):  # unclosed: the rest is not text, as in a browser
            break
        else:
            pos = match.end()
    return "".join(out)


def unflow(text: str, delsp: bool = False) -> str:
    """Join the soft line breaks of format=flowed text (RFC 3676)."""
    out: list[str] = []
    joined: list[str] = []
    depth = 0
    for line in text.split("\n"):
        quote = len(line) - len(line.lstrip(">"))
        content = line[quote:]
        if content.startswith(" "):
            content = content[1:]
        # A change of quotation depth ends a paragraph, and so does the signature separator
        # (RFC 3676 4.3: it is never part of a flowed paragraph, even after a flowed line).
        if joined and (quote != depth or content == "-- "):
            out.append(">" * depth + (" " if depth else "") + "".join(joined))
            joined = []
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        joined.append(content)
        depth = quote
        if not flowed:
            out.append(">" * depth + (" " if depth else "") + "".join(joined))
            joined = []
    if joined:
        out.append(">" * depth + (" " if depth else "") + "".join(joined))
    return "\n".join(out)


def _snippet(text: str) -> str:
    """The first SNIPPET_LENGTH visible characters, looking no further into the text than needed."""
    size = SNIPPET_LENGTH * 3
    while True:
        head = _WS.sub(" ", _INVISIBLE.sub("", text[:size])).strip()  # newsletters pad their preheader
        if len(head) >= SNIPPET_LENGTH or size >= len(text) or size > 100_000:
            return head[:SNIPPET_LENGTH]
        size *= 4
