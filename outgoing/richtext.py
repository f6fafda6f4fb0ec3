"""Rich text in mail we send: the HTML part, its plain text alternative, and plain text as HTML.

Pure (no Django, no database). The editor (Trix, in the browser) posts HTML; whatever it posts is
kept only as far as the received-mail policy allows (``mailbox.sanitize.clean_outgoing``): the
recipient's program gets nothing we would not show from a stranger. Pictures in the text are the
message's own parts (``cid:``, RFC 2392); the editor shows them from our URLs, so
``images_to_cids`` and ``cids_to_images`` swap the one for the other on the way in and out.

``html_to_text`` writes the text/plain alternative every rich message carries: list items behind
"- " or "1. ", quotations behind "> " (">>" when nested, as ``compose.quote`` writes them), links
as "text <url>", bold as *bold*, paragraphs apart by a blank line, the "-- " signature line kept.
``text_to_html`` goes the other way for the editor: lines kept, quotations as blockquotes, links.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Mapping
from html.parser import HTMLParser
from urllib.parse import urlsplit

from mailbox import plaintext, sanitize

# Blocks that stand apart from the text around them by a blank line (a div or a line break does not).
_SPACED = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "table", "hr"})
_BLOCKS = _SPACED | frozenset({"div", "center", "ul", "ol", "li", "tr", "caption", "thead", "tbody", "tfoot"})
_SKIPPED = frozenset({"style", "script", "title"})
_STRONG = frozenset({"strong", "b"})
_QUOTE_PREFIX = re.compile(r"^((?:>[ \t]?)+)")
_SRC = re.compile(r'(<img\b[^>]*?\ssrc=")([^"]*)(")', re.I)
_BLOCKQUOTE = re.compile(r"<blockquote(?=[\s>])")
_SPACES = re.compile(r"[ \t\n\r\f]+")
# How quotations look in programs without a style for them (the usual mail convention).
QUOTE_STYLE = "margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex"


# --- The HTML part -------------------------------------------------------------------------------


def clean(markup: str, content_ids: Collection[str] = ()) -> str:
    """The editor's HTML as it may be kept and sent: the received-mail policy, own pictures only."""
    return sanitize.clean_outgoing(markup or "", content_ids)


def document(body: str) -> str:
    """The text/html part of a message: ``body`` (already ``clean``) in a document; quotations marked as such."""
    body = _BLOCKQUOTE.sub(f'<blockquote type="cite" style="{QUOTE_STYLE}"', body)
    return (
        '<!DOCTYPE html>\n<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
        f"<body>{body}</body></html>\n"
    )


def images_to_cids(markup: str, cid_by_path: Mapping[str, str]) -> str:
    """Pictures shown from our URLs (by path: ``/compose/1/image/2/``) become ``cid:`` references.

    Works on any input: what this leaves unclean, ``clean`` removes afterwards.
    """

    def swap(match: re.Match) -> str:
        path = urlsplit(html.unescape(match.group(2))).path
        cid = cid_by_path.get(path)
        return f"{match.group(1)}cid:{html.escape(cid)}{match.group(3)}" if cid else match.group(0)

    return _SRC.sub(swap, markup or "")


def cids_to_images(markup: str, path_by_cid: Mapping[str, str]) -> str:
    """The other way, for the editor: ``cid:`` pictures of the message shown from our URLs (``markup`` is clean)."""

    def swap(match: re.Match) -> str:
        value = html.unescape(match.group(2))
        path = path_by_cid.get(value[4:]) if value.lower().startswith("cid:") else None
        return f"{match.group(1)}{html.escape(path)}{match.group(3)}" if path else match.group(0)

    return _SRC.sub(swap, markup or "")


def renamed_cids(markup: str, new_by_old: Mapping[str, str]) -> str:
    """``cid:`` pictures of clean ``markup`` pointed at other Content-IDs (a forward's copies of the original's)."""
    folded = {old.lower(): new for old, new in new_by_old.items()}

    def swap(match: re.Match) -> str:
        value = html.unescape(match.group(2))
        new = folded.get(value[4:].lower()) if value.lower().startswith("cid:") else None
        return f"{match.group(1)}cid:{html.escape(new)}{match.group(3)}" if new else match.group(0)

    return _SRC.sub(swap, markup or "")


# --- Plain text as HTML ---------------------------------------------------------------------------


def text_to_html(text: str) -> str:
    """Plain text for the editor: each line kept (``<br>``), quoted lines in nested blockquotes, links linked."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    out: list[str] = []
    depth = 0
    run: list[str] = []

    def close_run() -> None:
        if run:
            out.append("<div>" + "<br>".join(run) + ("<br>" if not run[-1] else "") + "</div>")
            run.clear()

    for line in lines:
        match = _QUOTE_PREFIX.match(line)
        level = match.group(1).count(">") if match else 0
        content = line[match.end() :] if match else line
        if level != depth:
            close_run()
            out.append("<blockquote>" * (level - depth) if level > depth else "</blockquote>" * (depth - level))
            depth = level
        run.append(_inline(content))
    close_run()
    out.append("</blockquote>" * depth)
    return "".join(out)


def _inline(line: str) -> str:
    parts = []
    for piece in plaintext.links(_keep_spaces(line)):
        text = html.escape(piece.text, quote=False)
        parts.append(f'<a href="{html.escape(piece.href)}">{text}</a>' if piece.href else text)
    return "".join(parts)


def _keep_spaces(text: str) -> str:
    """Runs of spaces, and spaces at either end of a line, as no-break spaces: HTML would fold them away."""
    text = re.sub(r" {2,}", lambda m: "\u00a0" * (len(m.group()) - 1) + " ", text)
    return re.sub(r"^ | $", "\u00a0", text)


# --- HTML as plain text ---------------------------------------------------------------------------


def html_to_text(markup: str, image_names: Mapping[str, str] | None = None) -> str:
    """The plain text alternative of ``markup`` (pass it ``clean``: well-formed, nothing hidden in it).

    ``image_names`` maps a picture's content id to its file name, written as "[name]" where it was.
    """
    writer = _Writer(image_names or {})
    writer.feed(markup or "")
    writer.close()
    return writer.result()


class _Item:
    """A list item's marker: written before its first line, as spaces before the next ones."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.used = False


class _Writer(HTMLParser):
    def __init__(self, image_names: Mapping[str, str]) -> None:
        super().__init__(convert_charrefs=True)
        self.image_names = image_names
        self.lines: list[str] = []
        self.words: list[str] = []
        self.space = False  # white space seen since the last word
        self.marks = ""  # emphasis opened, written before the next word
        self.want_blank = False
        self.prefixes: list[_Item | str] = []  # ">" for a quotation, an _Item for a list item
        self.lists: list[list[int] | None] = []  # per open list: [next number] (ol) or None (ul)
        self.skip = 0
        self.pre = 0
        self.strong = 0
        self.links: list[tuple[str, list[str]]] = []  # (href, its text so far)

    # Lines

    def _apply(self, text: str, *, blank: bool) -> str:
        for prefix in reversed(self.prefixes):
            if isinstance(prefix, _Item):
                if blank:
                    continue
                text = (" " * len(prefix.marker) if prefix.used else prefix.marker) + text
                prefix.used = True
            else:
                text = ">" + text if text.startswith(">") or not text else "> " + text
        return text

    def _emit(self, text: str) -> None:
        blank = not text
        if not blank and self.want_blank:
            self._blank()
        self.want_blank = False
        line = self._apply(text, blank=blank).rstrip()
        # The signature separator keeps its space (RFC 3676 4.3), whatever the editor did with it.
        self.lines.append("-- " if line == "--" and not self.prefixes else line)

    def _blank(self) -> None:
        if self.lines and self.lines[-1].strip(">"):
            self.lines.append(self._apply("", blank=True))

    def _flush(self, force: bool = False) -> None:
        if self.words or force:
            self._emit("".join(self.words))
        self.words = []
        self.space = False

    def _word(self, word: str) -> None:
        if self.space and self.words:
            self._add(" ")
        self.space = False
        if self.marks:
            self._add(self.marks)
            self.marks = ""
        self._add(word)

    def _add(self, text: str) -> None:
        self.words.append(text)
        for _href, seen in self.links:
            seen.append(text)

    # Parser events

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIPPED:
            self.skip += 1
            return
        attributes = dict(attrs)
        if tag in _BLOCKS:
            self._flush()
            if tag in _SPACED and tag != "blockquote":  # a quotation follows its "… wrote:" line directly
                self._blank()
        if tag == "br":
            self._flush(force=True)
        elif tag == "blockquote":
            if self.want_blank:  # the space after a paragraph or list goes before the quotation, not into it
                self._blank()
                self.want_blank = False
            self.prefixes.append(">")
        elif tag in ("ul", "ol"):
            if not self.lists:
                self._blank()
            self.lists.append([1] if tag == "ol" else None)
        elif tag == "li":
            counter = self.lists[-1] if self.lists else None
            marker = f"{counter[0]}. " if counter else "- "
            if counter:
                counter[0] += 1
            self.prefixes.append(_Item(marker))
        elif tag == "pre":
            self.pre += 1
        elif tag == "hr":
            self._emit("---")
            self.want_blank = True
        elif tag in _STRONG:
            if not self.strong:
                self.marks += "*"
            self.strong += 1
        elif tag == "a":
            self.links.append((attributes.get("href") or "", []))
        elif tag == "img":
            src = attributes.get("src") or ""
            name = attributes.get("alt") or (self.image_names.get(src[4:]) if src.lower().startswith("cid:") else "")
            if name:
                self._word(f"[{name}]")
        elif tag in ("td", "th"):
            self.space = True

    def handle_startendtag(self, tag: str, attrs) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr", "img"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skip = max(0, self.skip - 1)
            return
        if tag in _BLOCKS:
            self._flush()
            if tag in _SPACED and tag != "blockquote":
                self.want_blank = True
        if tag == "blockquote" and ">" in self.prefixes:
            del self.prefixes[len(self.prefixes) - 1 - self.prefixes[::-1].index(">")]
            self.want_blank = ">" not in self.prefixes
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            if not self.lists:
                self.want_blank = True
        elif tag == "li":
            for index in range(len(self.prefixes) - 1, -1, -1):
                if isinstance(self.prefixes[index], _Item):
                    del self.prefixes[index]
                    break
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        elif tag in _STRONG and self.strong:
            self.strong -= 1
            if not self.strong:
                if self.marks:  # nothing in it
                    self.marks = self.marks[:-1]
                else:
                    self._add("*")
        elif tag == "a" and self.links:
            href, seen = self.links.pop()
            self._link_end(href, "".join(seen).strip())

    def _link_end(self, href: str, text: str) -> None:
        target = href[7:] if href.lower().startswith("mailto:") else href
        if not href or text.lower() in (href.lower(), target.lower(), href.lower().rstrip("/")):
            return
        if not text:
            self._word(href)
            return
        self.space = True
        self._word(f"<{href}>")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            self.space = False
            lines = data.split("\n")
            for index, line in enumerate(lines):
                if index:
                    self._flush(force=True)
                if line:
                    self._word(line.replace("\u00a0", " "))
            return
        for index, part in enumerate(_SPACES.split(data)):
            if index:
                self.space = True
            if part:
                self._word(part.replace("\u00a0", " "))

    def result(self) -> str:
        self._flush()
        lines = self.lines
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip(">").strip():
            lines.pop()
        return "\n".join(lines) + "\n" if lines else ""
