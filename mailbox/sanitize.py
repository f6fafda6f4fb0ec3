"""The HTML mail policy: bleach under an email allowlist, plus a CSS value filter.

Mail HTML is hostile input that must still look right. This is the first of
two independent walls (docs/design.md, invariant 6); the second is the sandboxed,
script-less iframe under a strict Content-Security-Policy that serves the
result (``mailbox/views_html.py``). Each wall must hold on its own.

How a message body goes through:

1. bleach's own parser (html5lib, entities left as written) builds a tree. Only
   allowed tags, plus the raw-text elements whose *content* must go with them
   (``script``, ``style``, ``title``, ``textarea``, ``noscript`` …), reach the
   tree builder; every other tag is stripped by bleach's tokenizer and its text
   kept. ``<body>``/``<html>`` attributes (bgcolor, text, style, and the text's
   direction and language: ``dir``, ``lang``) are captured on the way and become a
   wrapper ``<div>``, so an Arabic mail written as ``<html dir="rtl">`` stays
   right-to-left.
2. A pass over the tree (``_Policy``) drops those raw-text elements with their
   content, collects ``<style>`` blocks, checks every URL against what the
   browser will see (entities decoded, tab/newline removed, ends trimmed):
   links must be plainly ``http:``, ``https:`` or ``mailto:`` (anything hidden
   behind entities, whitespace, control or invisible characters fails) and get
   ``target=_blank rel="noopener noreferrer"``; image sources must be ``cid:``
   (the message's own parts), ``http(s):`` (remote: blocked by default), or a
   base64 raster ``data:`` URI. 1×1 and hidden remote images (tracking pixels)
   are removed. A ``background`` attribute becomes a filtered CSS background.
   Attributes with a fixed set of values (``dir``, ``align``, ``valign``) keep
   only those values, lower-cased. The trailing quotation and signature are
   marked for folding (``mailbox/htmlfold.py``).
3. bleach's ``BleachSanitizerFilter`` then applies the tag/attribute allowlist
   again, with our CSS filter as its ``css_sanitizer``, and bleach serializes.

CSS (style attributes and ``<style>`` blocks) goes through ``mailbox/sanitize_css.py``.

URLs that depend on who views the message (signed URLs for ``cid:`` images,
the image proxy, or "blocked") are not baked into the cached HTML. ``sanitize``
writes unguessable markers (``wp-<nonce>-c<key>``/``wp-<nonce>-r<index>``, the
nonce drawn per run) and ``render`` swaps them in at view time with one regex.
``clean`` is the plain HTML-in/HTML-out form (URLs kept as written), used for
the idempotency check ``clean(clean(x)) == clean(x)``.
``clean_outgoing`` is the same policy for the HTML of mail we send (``outgoing/richtext.py``).

Work is bounded: at most ``MAX_HTML_CHARS`` of a body are sanitized, and start
tags deeper than ``MAX_DEPTH`` are dropped (html5lib's cost per tag grows with
depth); either sets ``truncated`` so the page can say so.

Bump ``VERSION`` whenever the policy changes: cached bodies of an older version
are re-sanitized lazily on their next view.
"""

from __future__ import annotations

import html as html_lib
import re
import secrets
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from urllib.parse import unquote
from xml.etree import ElementTree

import tinycss2
from bleach import html5lib_shim
from bleach.sanitizer import BleachSanitizerFilter

from . import htmlfold
from .sanitize_css import (
    KEEP,
    RASTER_DATA_URI,
    REMOTE,
    TAB_NEWLINE,
    URL_TRIM,
    Rewriter,
    css_url_string,
    sanitize_style,
    sanitize_stylesheet,
)

VERSION = 2


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ALLOWED_TAGS = _words(
    """table thead tbody tfoot caption tr td th div span p br hr h1 h2 h3 h4 h5 h6 ul ol li b i u s strike
    strong em blockquote pre code img a font center small big sub sup bdi bdo"""
)
# Attributes allowed on every allowed tag; href, src, face and size only where they belong.
GLOBAL_ATTRIBUTES = _words(
    """style align valign width height bgcolor color border cellpadding cellspacing colspan rowspan alt title
    dir lang class"""
)
TAG_ATTRIBUTES = {"a": frozenset({"href"}), "img": frozenset({"src"}), "font": frozenset({"face", "size"})}
# Attributes with a fixed set of values (compared as the browser does: trimmed, any case).
_ENUMERATED = {
    "dir": frozenset({"ltr", "rtl", "auto"}),
    "align": frozenset({"left", "right", "center", "justify"}),
    "valign": frozenset({"top", "middle", "bottom", "baseline"}),
}
_TAG_ENUMERATED = {
    ("img", "align"): frozenset({"left", "right", "top", "middle", "bottom", "baseline", "texttop", "absmiddle"}),
    ("caption", "align"): frozenset({"top", "bottom", "left", "right"}),
}
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*\Z")
# Attributes we add ourselves (the input's own are removed first).
_OWN_ATTRIBUTES = {"a": frozenset({"target", "rel"})}
# Parsed as the browser parses them (raw text / RCDATA), then dropped with their content.
DROP_WITH_CONTENT = frozenset({"script", "title", "textarea", "noscript", "noembed", "noframes", "iframe", "xmp"})
_PARSE_TAGS = ALLOWED_TAGS | DROP_WITH_CONTENT | {"style"}
_BACKGROUND_TAGS = frozenset({"table", "td", "th", "tr"})

MAX_CLASS_CHARS = 200
# Bounds on the work one message can cause (first view only; the result is cached).
MAX_HTML_CHARS = 1_000_000  # Gmail clips at ~100 KB; beyond this only the start is shown formatted
MAX_DEPTH = 128  # open elements; deeper start tags are dropped (Blink stops nesting at 512)
_VOID = frozenset({"br", "hr", "img"})

_LINK = re.compile(r"(?:https?://[^\s/?#]|mailto:)", re.I)
_PIXELS = re.compile(r"\s*(\d+(?:\.\d*)?)\s*(?:px)?\s*\Z", re.I)
_STYLE_SIZE = re.compile(
    r"(?:^|;)\s*(width|height)\s*:\s*(\d+(?:\.\d*)?)\s*(?:px)?\s*(?:!\s*important\s*)?(?=;|$)", re.I
)
_HIDDEN_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden|opacity\s*:\s*0*(?:\.0*)?\s*(?:;|$)"
    r"|max-(?:width|height)\s*:\s*0)",
    re.I,
)


@dataclass
class Sanitized:
    """A sanitized body with markers, and what ``render`` needs to resolve them."""

    html: str
    nonce: str
    remote: list[str] = field(default_factory=list)  # marker index -> URL
    cids: list = field(default_factory=list)  # keys of the content ids that resolved
    trackers_removed: int = 0
    truncated: bool = False
    folded: bool = False  # a trailing quotation or signature is marked (htmlfold.FOLD_CLASS)
    version: int = VERSION

    def meta(self) -> dict:
        return {
            "nonce": self.nonce,
            "remote": self.remote,
            "cids": self.cids,
            "trackers_removed": self.trackers_removed,
            "truncated": self.truncated,
            "folded": self.folded,
        }


# --- Public API --------------------------------------------------------------------------


def clean(markup: str) -> str:
    """Sanitize ``markup``; URLs that pass stay as written (remote images included)."""
    return _Policy(lambda kind, url: KEEP).run(markup)


def clean_outgoing(markup: str, content_ids: Collection[str] = ()) -> str:
    """HTML we send, under this same policy: images only from the message's own parts (``cid:`` one of
    ``content_ids``; no remote or ``data:`` ones), and no style blocks, fold marks or ``class`` attributes
    (the editor makes none, and other mail's mean nothing where it is quoted)."""
    own = {cid.lower() for cid in content_ids}
    return _Policy(lambda kind, url: KEEP if kind == "cid" and url.lower() in own else None, outgoing=True).run(markup)


def sanitize(markup: str, content_ids: dict[str, int] | None = None) -> Sanitized:
    """Sanitize for caching: ``cid:`` and remote URLs become markers resolved by ``render``.

    ``content_ids`` maps a Content-ID (without angle brackets) to a key (an
    attachment id); ``cid:`` references to anything else are dropped.
    """
    nonce = secrets.token_hex(8)
    result = Sanitized(html="", nonce=nonce)
    by_id = dict(content_ids or {})
    folded = {cid.lower(): key for cid, key in by_id.items()}
    remote_index: dict[str, int] = {}

    def rewrite(kind: str, url: str):
        if kind == "cid":
            key = by_id.get(url, folded.get(url.lower()))
            if key is None:
                return None
            if key not in result.cids:
                result.cids.append(key)
            return f"wp-{nonce}-c{key}"
        index = remote_index.get(url)
        if index is None:
            index = remote_index[url] = len(result.remote)
            result.remote.append(url)
        return f"wp-{nonce}-r{index}"

    policy = _Policy(rewrite)
    result.html = policy.run(markup)
    result.trackers_removed = policy.trackers_removed
    result.truncated = policy.truncated
    result.folded = policy.folded
    return result


def render(
    cached: str,
    meta: dict,
    *,
    cid_url: Callable[[int], str],
    remote_url: Callable[[int], str] | None,
) -> str:
    """Resolve the markers of a cached body for one view.

    ``cid_url(key)`` and ``remote_url(index)`` give URLs (no ``"``, ``&`` or
    ``)``); ``remote_url=None`` blocks remote images: ``<img>`` loses its
    source (its alt text shows) and CSS ``url()`` becomes ``none``.
    """
    nonce = meta.get("nonce") or ""
    if not nonce or f"wp-{nonce}-" not in cached:
        return cached
    pattern = re.compile(rf'src="wp-{re.escape(nonce)}-([cr])(\d+)"|url\(wp-{re.escape(nonce)}-([cr])(\d+)\)')

    def replace(match: re.Match) -> str:
        in_img = match.group(1) is not None
        kind, number = (match.group(1), match.group(2)) if in_img else (match.group(3), match.group(4))
        if kind == "c":
            url = cid_url(int(number))
        elif remote_url is None:
            return "data-webpop-blocked" if in_img else "none"
        else:
            url = remote_url(int(number))
        return f'src="{url}"' if in_img else f"url({url})"

    return pattern.sub(replace, cached)


# --- The tree pass -------------------------------------------------------------------------


class _Tokenizer(html5lib_shim.BleachHTMLTokenizer):
    """bleach's tokenizer, remembering ``<html>``/``<body>`` attributes, and bounding nesting.

    html5lib checks element scopes by walking the stack of open elements, so every
    tag costs time in proportion to the nesting depth: 20,000 nested ``<div>`` took
    minutes. Like browsers (Blink stops nesting at 512), start tags that would open
    an element deeper than ``MAX_DEPTH`` are dropped (their content is kept), which
    bounds the work per tag.
    """

    def emitCurrentToken(self):
        token = self.currentToken
        kind = token.get("type")
        if kind in (html5lib_shim.TAG_TOKEN_TYPE_START, html5lib_shim.TAG_TOKEN_TYPE_END):
            name = token.get("name", "").lower()
            parser = self.parser
            if kind == html5lib_shim.TAG_TOKEN_TYPE_START and name in ("body", "html"):
                captured = parser.root_attributes[name]
                for attribute, value in token.get("data") or []:
                    captured.setdefault(attribute.lower(), value)
            elif (
                kind == html5lib_shim.TAG_TOKEN_TYPE_START
                and name in parser.tags
                and name not in _VOID
                and len(parser.tree.openElements) >= MAX_DEPTH
            ):
                parser.too_deep = True
                dropped = {"type": html5lib_shim.TAG_TOKEN_TYPE_CHARACTERS, "data": ""}
                self.currentToken = self.emitted_last_token = dropped
                self.tokenQueue.append(dropped)
                self.state = self.dataState
                return
        super().emitCurrentToken()


class _Parser(html5lib_shim.BleachHTMLParser):
    def parseFragment(self, stream, *args, **kwargs):
        """The fragment, read from the element tree itself.

        html5lib's own ``getFragment`` walks its child-node lists, which miss elements
        foster-parented out of a top-level table (``<table><p>text``): the browser shows those.
        """
        self._parse(stream, True, *args, **kwargs)
        root = self.tree.openElements[0]._element
        fragment = ElementTree.Element("DOCUMENT_FRAGMENT")
        fragment.text = root.text
        fragment.extend(list(root))
        return fragment

    def _parse(self, stream, innerHTML=False, container="div", scripting=True, **kwargs):
        self.root_attributes: dict[str, dict[str, str]] = {"html": {}, "body": {}}
        self.too_deep = False
        self.innerHTMLMode = innerHTML
        self.container = container
        self.scripting = scripting
        self.tokenizer = _Tokenizer(stream=stream, consume_entities=False, parser=self, **kwargs)
        self.reset()
        try:
            self.mainLoop()
        except html5lib_shim.ReparseException:
            self.reset()
            self.mainLoop()


_local = threading.local()


def _tools():
    """A parser, walker and serializer per thread (html5lib's are not thread-safe)."""
    tools = getattr(_local, "tools", None)
    if tools is None:
        parser = _Parser(tags=_PARSE_TAGS, strip=True, consume_entities=False, namespaceHTMLElements=False)
        walker = html5lib_shim.getTreeWalker("etree")
        serializer = html5lib_shim.BleachHTMLSerializer(
            quote_attr_values="always",
            omit_optional_tags=False,
            escape_lt_in_attrs=True,
            resolve_entities=False,
            sanitize=False,
            alphabetical_attributes=False,
        )
        tools = _local.tools = (parser, walker, serializer)
    return tools


def browser_url(value: str) -> str:
    """What a browser makes of a URL attribute: entities decoded, tab/newline gone, ends trimmed."""
    return TAB_NEWLINE.sub("", html_lib.unescape(value)).strip(URL_TRIM)


def safe_link(value: str) -> bool:
    return bool(_LINK.match(browser_url(value)))


def _pixels(value: str | None) -> float | None:
    if value is None:
        return None
    match = _PIXELS.match(html_lib.unescape(value))
    return float(match.group(1)) if match else None


class _CssHook:
    """bleach's ``css_sanitizer`` interface, running our value filter on the decoded attribute."""

    def __init__(self, rewrite: Rewriter) -> None:
        self.rewrite = rewrite

    def sanitize_css(self, style: str) -> str:
        return sanitize_style(html_lib.unescape(style), self.rewrite)


def _attribute_allowed(tag: str, name: str, value: str) -> bool:
    if name in _ENUMERATED:
        return _enumerated(tag, name, value) is not None
    return name in GLOBAL_ATTRIBUTES or name in TAG_ATTRIBUTES.get(tag, ()) or name in _OWN_ATTRIBUTES.get(tag, ())


def _enumerated(tag: str, name: str, value: str) -> str | None:
    """The value of a fixed-value attribute (``dir``, ``align``, ``valign``) as written plainly, or None."""
    word = html_lib.unescape(value).strip(" \t\n\r\f").lower()
    return word if word in _TAG_ENUMERATED.get((tag, name), _ENUMERATED[name]) else None


class _Finish(html5lib_shim.Filter):
    """Last touches on the token stream: no emptied ``style`` attributes, and a ``<pre>`` whose
    text starts with a newline gets the one the parser will eat again (so output re-parses the same)."""

    def __iter__(self):
        after_pre = False
        for token in html5lib_shim.Filter.__iter__(self):
            kind = token["type"]
            data = token.get("data")
            if kind in ("StartTag", "EmptyTag") and data and data.get((None, "style")) == "":
                del data[(None, "style")]
            if after_pre and kind in ("Characters", "SpaceCharacters") and data.startswith("\n"):
                token["data"] = "\n" + data
            after_pre = kind == "StartTag" and token["name"] == "pre"
            yield token


class _Policy:
    def __init__(self, rewrite: Rewriter, *, outgoing: bool = False) -> None:
        self.rewrite = rewrite
        self.outgoing = outgoing
        self.styles: list[str] = []
        self.trackers_removed = 0
        self.truncated = False  # cut at MAX_HTML_CHARS, or nesting dropped past MAX_DEPTH
        self.folded = False

    def run(self, markup: str) -> str:
        if not markup:
            return ""
        if len(markup) > MAX_HTML_CHARS:
            markup = markup[:MAX_HTML_CHARS]
            self.truncated = True
        parser, walker, serializer = _tools()
        root = parser.parseFragment(markup)
        self.truncated = self.truncated or parser.too_deep
        if not self.outgoing:
            self.folded = htmlfold.mark(root)  # before the walk: it reads markers the walk removes
        self.walk(root)
        wrapper_attributes = self.wrapper_attributes(parser.root_attributes)
        if wrapper_attributes:
            wrapper = ElementTree.Element("div", wrapper_attributes)
            wrapper.text, root.text = root.text, None
            wrapper.extend(list(root))
            root[:] = [wrapper]
        stream = BleachSanitizerFilter(
            source=walker(root),
            allowed_tags=ALLOWED_TAGS,
            attributes=_attribute_allowed,
            allowed_protocols={"http", "https", "mailto", "cid", "data"},
            strip_disallowed_tags=True,
            strip_html_comments=True,
            css_sanitizer=_CssHook(self.rewrite),
        )
        body = serializer.render(_Finish(stream))
        if self.outgoing:  # style blocks: in mail we send, only the editor's markup (which has none)
            return body
        css = "\n".join(filter(None, (sanitize_stylesheet(s, self.rewrite) for s in self.styles)))
        return (f"<style>{css}</style>" if css else "") + body

    def walk(self, root) -> None:
        stack = [root]
        while stack:
            parent = stack.pop()
            kept = []
            for child in list(parent):
                tag = child.tag if isinstance(child.tag, str) else None
                if tag == "style":
                    self.styles.append(child.text or "")
                    keep = False
                elif tag is None or tag in DROP_WITH_CONTENT:
                    keep = False
                else:
                    keep = self.element(tag, child)
                if keep:
                    kept.append(child)
                    stack.append(child)
                elif child.tail:  # the text after a dropped element stays
                    if kept:
                        kept[-1].tail = (kept[-1].tail or "") + child.tail
                    else:
                        parent.text = (parent.text or "") + child.tail
            parent[:] = kept

    def element(self, tag: str, el) -> bool:
        attrs = el.attrib
        background = attrs.get("background") if tag in _BACKGROUND_TAGS else None
        for name in list(attrs):
            if not isinstance(name, str) or not _attribute_allowed(tag, name, attrs[name]):
                del attrs[name]
        for name in _ENUMERATED.keys() & attrs.keys():
            attrs[name] = _enumerated(tag, name, attrs[name])
        if "class" in attrs:
            if self.outgoing:
                del attrs["class"]
            else:
                attrs["class"] = attrs["class"][:MAX_CLASS_CHARS]
        if background is not None:
            self.background(attrs, background)
        if tag == "a":
            if "href" in attrs and not safe_link(attrs["href"]):
                del attrs["href"]
            if "href" in attrs:
                attrs["target"] = "_blank"
                attrs["rel"] = "noopener noreferrer"
        elif tag == "img":
            return self.image(el)
        return True

    def image(self, el) -> bool:
        attrs = el.attrib
        raw = attrs.pop("src", None)
        src = browser_url(raw) if raw is not None else ""
        new = None
        lowered = src.lower()
        if lowered.startswith("cid:"):
            new = self.rewrite("cid", unquote(src[4:]).strip().strip("<>"))
        elif REMOTE.match(src):
            if self.is_tracker(attrs):
                self.trackers_removed += 1
                return False
            new = self.rewrite("remote", src)
        elif RASTER_DATA_URI.match(src) and not self.outgoing:
            new = re.sub(r"\s+", "", src)
        if new is KEEP:
            new = raw
        if new is None:
            return "alt" in attrs  # a picture we will not show: its alt text, if any
        # The source first: render() finds the markers as `<img src="…`.
        others = dict(attrs)
        attrs.clear()
        attrs["src"] = new
        attrs.update(others)
        return True

    def background(self, attrs, value: str) -> None:
        url = browser_url(value)
        if url.lower().startswith("cid:") or REMOTE.match(url):
            style = attrs.get("style", "")
            attrs["style"] = f"{style};background-image:url({css_url_string(url)})"

    @staticmethod
    def is_tracker(attrs) -> bool:
        width, height = _pixels(attrs.get("width")), _pixels(attrs.get("height"))
        style = html_lib.unescape(attrs.get("style", ""))
        for name, number in _STYLE_SIZE.findall(style):
            if name.lower() == "width":
                width = float(number)
            else:
                height = float(number)
        if _HIDDEN_STYLE.search(style):
            return True
        if width == 0 or height == 0:
            return True
        return width is not None and height is not None and width <= 2 and height <= 2

    def wrapper_attributes(self, root_attributes: dict[str, dict[str, str]]) -> dict[str, str]:
        """The wrapper ``<div>``'s attributes from ``<html>`` and ``<body>`` (``<body>``'s win)."""
        attributes = {**root_attributes["html"], **root_attributes["body"]}
        wrapper = {}
        style = self.body_style(attributes)
        if style:
            wrapper["style"] = style
        direction = _enumerated("div", "dir", attributes.get("dir", ""))
        if direction:
            wrapper["dir"] = direction
        language = html_lib.unescape(attributes.get("lang", "")).strip()
        if _LANGUAGE_TAG.match(language):
            wrapper["lang"] = language
        return wrapper

    def body_style(self, attributes: dict[str, str]) -> str:
        parts = []
        bgcolor = html_lib.unescape(attributes.get("bgcolor", "")).strip()
        if bgcolor:
            parts.append(f"background-color:{bgcolor}")
        text = html_lib.unescape(attributes.get("text", "")).strip()
        if text:
            parts.append(f"color:{text}")
        background = attributes.get("background")
        if background:
            url = browser_url(background)
            if url.lower().startswith("cid:") or REMOTE.match(url):
                parts.append(f"background-image:url({css_url_string(url)})")
        if attributes.get("style"):
            # Without overflow: the page's box may not clip or scroll the whole message (see
            # views_html.FRAME_HEAD), so content wider than the frame is never hidden there.
            declarations = tinycss2.parse_declaration_list(html_lib.unescape(attributes["style"]), True, True)
            parts += [
                f"{d.name}:{tinycss2.serialize(d.value)}{' !important' if d.important else ''}"
                for d in declarations
                if d.type == "declaration" and not d.lower_name.startswith("overflow")
            ]
        # Escaped as an attribute would be: the CSS hook decodes it again.
        return html_lib.escape(";".join(parts), quote=False) if parts else ""
