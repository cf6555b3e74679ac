"""Go-compatible text helpers for the BSS double: JSON as ``encoding/json`` writes it, ``%q``, FNV-1a.

Upstream BSS is written in Go; its observable bytes come from ``encoding/json`` (compact, HTML-escaped,
map keys sorted, struct fields in declaration order) and ``strconv.Quote``. These helpers reproduce
those byte sequences. Structs are represented by plain dicts built in field order; free-form maps
(cloud-init meta-data/user-data) go through :func:`go_map` so their keys are sorted like Go's.
"""

import json
import unicodedata

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def image_key_hash(path):
    """FNV-1a-64 of the UTF-8 bytes of ``path`` as 16 lowercase hex digits (etcd ``/kernel/<h>``)."""
    value = FNV_OFFSET
    for byte in path.encode("utf-8", "surrogateescape"):
        value ^= byte
        value = (value * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def go_map(value):
    """Recursively sort the keys of every dict, as Go does when it encodes ``map[string]interface{}``."""
    if isinstance(value, dict):
        return {key: go_map(value[key]) for key in sorted(value, key=lambda k: k.encode("utf-8", "surrogatepass"))}
    if isinstance(value, list):
        return [go_map(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)  # Go decodes JSON numbers as float64 and prints 1.0 as 1
    return value


_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json(value, newline=False):
    """Compact, HTML-escaped JSON; ``newline`` adds the ``\\n`` a Go ``json.Encoder`` writes."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if any(char in text for char in _HTML_ESCAPES):
        text = "".join(_HTML_ESCAPES.get(char, char) for char in text)
    return text + ("\n" if newline else "")


def _printable(char):
    """Go's ``strconv.IsPrint``: letters, marks, numbers, punctuation, symbols and ASCII space."""
    if char == " ":
        return True
    return unicodedata.category(char)[0] in "LMNPS"


_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
                  "\\": "\\\\", '"': '\\"'}


def go_quote(text):
    """Go's ``strconv.Quote`` (``%q``) of a string; invalid UTF-8 may be passed as surrogate escapes."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not valid UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x7F or _printable(char):
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
