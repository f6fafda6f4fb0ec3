"""Read gettext catalogues and collect the strings the code marks for translation, in pure Python.

Used by tests/test_i18n.py to check that locale/<lang>/LC_MESSAGES/django.po covers every string
(as ``makemessages`` would extract it) and that the committed django.mo was compiled from it,
without needing GNU gettext on the test machine.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.translation.template import templatize

# (context or None, msgid)
Key = tuple[str | None, str]

_GETTEXT_FUNCS = {
    # name: (index of context arg or None, index of msgid arg)
    "gettext": (None, 0),
    "gettext_lazy": (None, 0),
    "gettext_noop": (None, 0),
    "_": (None, 0),
    "ngettext": (None, 0),
    "ngettext_lazy": (None, 0),
    "pgettext": (0, 1),
    "pgettext_lazy": (0, 1),
    "npgettext": (0, 1),
    "npgettext_lazy": (0, 1),
}


@dataclass
class Entry:
    msgid: str
    context: str | None = None
    plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    fuzzy: bool = False


def _unquote(line: str) -> str:
    return ast.literal_eval(line)  # a PO string is a C string; Python's literal reads its escapes


def parse_po(path: Path) -> dict[Key, Entry]:
    """Entries of a .po file keyed by (msgctxt, msgid); the header (msgid "") included."""
    entries: dict[Key, Entry] = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        current: Entry | None = None
        target = None
        fuzzy = False
        for line in block.splitlines():
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            if line.startswith("#") or not line.strip():
                continue
            keyword, _, rest = line.partition(" ")
            if line.startswith('"'):
                value = _unquote(line)
            else:
                value = _unquote(rest)
                if current is None:
                    current = Entry(msgid="")
                target = keyword
            if target == "msgctxt":
                current.context = (current.context or "") + value
            elif target == "msgid":
                current.msgid += value
            elif target == "msgid_plural":
                current.plural = (current.plural or "") + value
            elif target.startswith("msgstr"):
                index = int(target[7:-1]) if "[" in target else 0
                while len(current.msgstr) <= index:
                    current.msgstr.append("")
                current.msgstr[index] += value
        if current is not None:
            current.fuzzy = fuzzy
            entries[(current.context, current.msgid)] = current
    return entries


def _call_strings(source: str, start: int) -> list[str] | None:
    """The string literal arguments of the call whose "(" is at ``start`` (others skipped)."""
    tokens = tokenize.generate_tokens(io.StringIO(source[start:]).readline)
    depth, args, current = 0, [], None
    try:
        for tok in tokens:
            if tok.type == tokenize.OP and tok.string == "(":
                depth += 1
                if depth == 1:
                    continue
            elif tok.type == tokenize.OP and tok.string == ")":
                depth -= 1
                if depth == 0:
                    args.append(current)
                    return args
            if depth == 1 and tok.type == tokenize.OP and tok.string == ",":
                args.append(current)
                current = None
            elif depth == 1 and tok.type == tokenize.STRING:
                current = ast.literal_eval(tok.string)
    except (tokenize.TokenError, SyntaxError, ValueError):
        return None
    return None


def _keys_from_call(name: str, args: list) -> set[Key]:
    ctx_index, id_index = _GETTEXT_FUNCS[name]
    if len(args) <= id_index or not isinstance(args[id_index], str):
        return set()
    context = args[ctx_index] if ctx_index is not None else None
    return {(context, args[id_index])}


def template_strings(path: Path) -> set[Key]:
    """What makemessages extracts from a template ({% translate %}, {% blocktranslate %})."""
    source = templatize(path.read_text(encoding="utf-8"), origin=str(path))
    keys: set[Key] = set()
    for match in re.finditer(r"\b(npgettext|pgettext|ngettext|gettext)\(", source):
        args = _call_strings(source, match.end() - 1)
        if args:
            keys |= _keys_from_call(match.group(1), args)
    return keys


def python_strings(path: Path) -> set[Key]:
    """String literals passed to gettext and friends in a Python module."""
    keys: set[Key] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in _GETTEXT_FUNCS:
                args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
                keys |= _keys_from_call(name, args)
    return keys
