"""The CSS of HTML mail: style attributes and ``<style>`` blocks through a value filter.

Part of the HTML mail policy (``mailbox/sanitize.py``, which runs this as bleach's
``css_sanitizer`` and on the blocks it collects).

bleach's own ``CSSSanitizer`` checks property *names* only. Ours re-tokenizes
each value with tinycss2 (after decoding HTML entities, as the browser does)
and re-emits it from the tokens, so CSS escapes can never rebuild a blocked
word: only an allowlist of properties and functions survives; ``url()`` only
for background and list-style images, and only ``cid:``, remote ``http(s)``
(rewritten to the image proxy, or blocked) or raster ``data:``; no ``var()``,
``expression()``, ``image-set()``, ``attr()``, at-rules, custom properties,
``behavior``/``-moz-binding``; ``position: fixed|sticky`` dropped. The output
never contains ``&``, ``<``, ``>`` or a backslash outside our own quoted URLs,
so no second decoding by the browser can change it.

``<style>`` blocks: kept, not dropped (real newsletters depend on them for
classes and ``@media`` rules). Each is parsed and re-emitted with every
selector scoped to the message container ``#webpop-message`` (``html``,
``body`` and ``:root`` map to the container itself), declarations through the
same value filter, ``@media`` kept (its query checked), every other at-rule
(``@import``, ``@font-face``, ``@keyframes`` …) dropped. ``class`` is allowed on
elements for that reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

import tinycss2

CONTAINER_ID = "webpop-message"

KEEP = object()
"""A rewriter's answer: keep the URL exactly as written."""

Rewriter = Callable[[str, str], "str | object | None"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


CSS_PROPERTIES = _words(
    """background background-color background-image background-position background-repeat background-size
    border border-top border-right border-bottom border-left border-color border-style border-width
    border-top-color border-right-color border-bottom-color border-left-color border-top-style
    border-right-style border-bottom-style border-left-style border-top-width border-right-width
    border-bottom-width border-left-width border-radius border-top-left-radius border-top-right-radius
    border-bottom-left-radius border-bottom-right-radius border-collapse border-spacing box-sizing
    box-shadow caption-side clear color direction display empty-cells float font font-family font-size
    font-style font-variant font-weight height max-height max-width min-height min-width letter-spacing
    line-height list-style list-style-image list-style-position list-style-type margin margin-top
    margin-right margin-bottom margin-left opacity outline outline-color outline-style outline-width
    overflow overflow-x overflow-y overflow-wrap padding padding-top padding-right padding-bottom
    padding-left position top right bottom left table-layout text-align text-decoration
    text-decoration-color text-decoration-line text-decoration-style text-indent text-overflow text-shadow
    text-transform unicode-bidi vertical-align visibility white-space width word-break word-spacing
    word-wrap z-index text-size-adjust -webkit-text-size-adjust -ms-text-size-adjust"""
)
URL_PROPERTIES = frozenset({"background", "background-image", "list-style", "list-style-image"})
CSS_FUNCTIONS = _words(
    """rgb rgba hsl hsla calc min max clamp linear-gradient radial-gradient repeating-linear-gradient
    repeating-radial-gradient"""
)
_CSS_LITERALS = frozenset({",", "/", "+", "-", "*"})
_SELECTOR_LITERALS = frozenset({".", "*", ">", "+", "~", ":", ",", "=", "^=", "$=", "*=", "|=", "~=", "|", "-"})
_SELECTOR_FUNCTIONS = frozenset(
    {"not", "is", "where", "nth-child", "nth-last-child", "nth-of-type", "nth-last-of-type", "lang", "dir"}
)
_UNSAFE_CSS_CHARS = re.compile(r"[\\&<>{}@;\x00-\x08\x0b\x0e-\x1f\x7f]")
_UNSAFE_SELECTOR_CHARS = re.compile(r"[\\&<{}@;\x00-\x08\x0b\x0e-\x1f\x7f]")  # `>` is a combinator
MAX_DECLARATIONS = 200
MAX_STYLESHEET_CHARS = 200_000
MAX_RULES = 2_000
RASTER_DATA_URI = re.compile(r"data:image/(?:png|gif|jpe?g|webp|bmp);base64,[A-Za-z0-9+/=\s]*\Z", re.I)
REMOTE = re.compile(r"https?://[^\s/?#]", re.I)
TAB_NEWLINE = re.compile(r"[\t\n\r]")
URL_TRIM = "".join(chr(c) for c in range(0x21))
_SCOPE_PREFIX = re.compile(r"(?:(?:html|body|:root)(?=$|[\s>+~.:#\[])\s*(?:>\s*)?)+", re.I)
_CONTAINER_SCOPED = re.compile(rf"#{CONTAINER_ID}(?=$|[\s>+~.:\[])")


def sanitize_style(style: str, rewrite: Rewriter | None = None) -> str:
    """A style attribute's declarations through the value filter (``style`` as the browser decodes it)."""
    return _declarations(tinycss2.parse_declaration_list(style, True, True), rewrite or _keep)


def sanitize_stylesheet(css: str, rewrite: Rewriter | None = None) -> str:
    """A ``<style>`` block re-emitted with every selector scoped to the container."""
    if len(css) > MAX_STYLESHEET_CHARS:
        return ""
    rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    return "\n".join(_rules(rules, rewrite or _keep, nested=False, budget=[MAX_RULES]))


def _keep(kind: str, url: str):
    return KEEP


def css_url_string(url: str) -> str:
    """A quoted CSS string for a URL: nothing in it that HTML or CSS could read twice."""
    out = []
    for char in url:
        if char.isascii() and (char.isalnum() or char in "-_.~:/?#[]@!$'()*+,;=%"):
            out.append(char)
        else:
            out.append(f"\\{ord(char):x} ")
    return '"' + "".join(out) + '"'


def _css_url(url: str, prop: str, rewrite: Rewriter) -> str | None:
    if prop not in URL_PROPERTIES:
        return None
    url = TAB_NEWLINE.sub("", url).strip(URL_TRIM)
    lowered = url.lower()
    if lowered.startswith("cid:"):
        new = rewrite("cid", unquote(url[4:]).strip().strip("<>"))
    elif REMOTE.match(url):
        new = rewrite("remote", url)
    elif RASTER_DATA_URI.match(url):
        new = KEEP
        url = re.sub(r"\s+", "", url)
    else:
        return None
    if new is None:
        return None
    return f"url({css_url_string(url)})" if new is KEEP else f"url({new})"


def _value(prop: str, tokens, rewrite: Rewriter, depth: int = 0) -> str | None:
    """Re-emit a declaration value from its tokens; None when anything in it is not allowed."""
    if depth > 8:
        return None
    parts: list[str] = []
    for token in tokens:
        kind = token.type
        if kind == "whitespace":
            if parts and parts[-1] != " ":
                parts.append(" ")
            continue
        if kind == "comment":
            continue
        if kind == "url":
            text = _css_url(token.value, prop, rewrite)
        elif kind == "function":
            name = token.lower_name
            if name == "url":
                args = [a for a in token.arguments if a.type not in ("whitespace", "comment")]
                text = _css_url(args[0].value, prop, rewrite) if len(args) == 1 and args[0].type == "string" else None
            elif name in CSS_FUNCTIONS:
                inner = _value(prop, token.arguments, rewrite, depth + 1)
                text = None if inner is None else f"{name}({inner.strip()})"
            else:
                text = None
        elif kind == "ident":
            if prop == "position" and token.lower_value in ("fixed", "sticky"):
                return None
            text = token.serialize()
        elif kind in ("number", "percentage", "dimension", "hash", "string"):
            text = token.serialize()
        elif kind == "literal" and token.value in _CSS_LITERALS:
            text = token.value
        else:
            text = None
        if text is None:
            return None
        if kind not in ("url", "function") and _UNSAFE_CSS_CHARS.search(text):
            return None
        parts.append(text)
    value = "".join(parts).strip()
    return value or None


def _declarations(declarations, rewrite: Rewriter) -> str:
    out = []
    for declaration in declarations:
        if declaration.type != "declaration":
            continue
        name = declaration.lower_name
        if name not in CSS_PROPERTIES:
            continue
        value = _value(name, declaration.value, rewrite)
        if value is None:
            continue
        out.append(f"{name}: {value}{' !important' if declaration.important else ''}")
        if len(out) >= MAX_DECLARATIONS:
            break
    return "; ".join(out)


def _selector_tokens_ok(tokens, depth: int = 0) -> bool:
    if depth > 4:
        return False
    for token in tokens:
        kind = token.type
        if kind in ("whitespace", "comment", "ident", "hash", "number", "dimension", "string"):
            continue
        if kind == "literal" and token.value in _SELECTOR_LITERALS:
            continue
        if kind == "[] block" and _selector_tokens_ok(token.content, depth + 1):
            continue
        if (
            kind == "function"
            and token.lower_name in _SELECTOR_FUNCTIONS
            and _selector_tokens_ok(token.arguments, depth + 1)
        ):
            continue
        return False
    return True


def _scope(prelude) -> str | None:
    """Every selector of a rule scoped to the container; None when any is not acceptable."""
    if not _selector_tokens_ok(prelude):
        return None
    selectors: list[list] = [[]]
    for token in prelude:
        if token.type == "literal" and token.value == ",":
            selectors.append([])
        else:
            selectors[-1].append(token)
    scoped = []
    for tokens in selectors:
        text = re.sub(r"\s+", " ", tinycss2.serialize(tokens)).strip()
        if not text or _UNSAFE_SELECTOR_CHARS.search(text):
            return None
        if _CONTAINER_SCOPED.match(text):
            scoped.append(text)
            continue
        rest = _SCOPE_PREFIX.sub("", text, count=1) if _SCOPE_PREFIX.match(text) else text
        scoped.append(f"#{CONTAINER_ID} {rest}".rstrip())
    return ", ".join(scoped)


def _media_query(prelude) -> str | None:
    def ok(tokens) -> bool:
        for token in tokens:
            if token.type in ("whitespace", "ident", "number", "dimension", "percentage"):
                continue
            if token.type == "literal" and token.value in (",", ":", "/"):
                continue
            if token.type == "() block" and ok(token.content):
                continue
            return False
        return True

    if not ok(prelude):
        return None
    text = re.sub(r"\s+", " ", tinycss2.serialize(prelude)).strip()
    return None if not text or _UNSAFE_CSS_CHARS.search(text) else text


def _rules(rules, rewrite: Rewriter, *, nested: bool, budget: list[int]) -> list[str]:
    out: list[str] = []
    for rule in rules:
        if budget[0] <= 0:
            break
        budget[0] -= 1
        if rule.type == "qualified-rule":
            selector = _scope(rule.prelude)
            if selector is None:
                continue
            body = _declarations(tinycss2.parse_declaration_list(rule.content, True, True), rewrite)
            if body:
                out.append(f"{selector} {{ {body} }}")
        elif rule.type == "at-rule" and rule.lower_at_keyword == "media" and not nested and rule.content is not None:
            query = _media_query(rule.prelude)
            if query is None:
                continue
            inner = _rules(tinycss2.parse_rule_list(rule.content, True, True), rewrite, nested=True, budget=budget)
            if inner:
                out.append(f"@media {query} {{\n" + "\n".join(inner) + "\n}")
    return out
