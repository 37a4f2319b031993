"""Label-set identity exactly as Prometheus and Alertmanager compute it.

`fingerprint` is prometheus/common `model.LabelSet.Fingerprint()` (the same sum as
`model.LabelsToSignature`): FNV-1a 64 over the label names in sorted order, each name and
each value followed by the separator byte 0xff, printed as 16 lower-case hex digits. Equal
fingerprints mean Alertmanager would see the same alert.
"""

from __future__ import annotations

from collections.abc import Mapping

_OFFSET64 = 14695981039346656037
_PRIME64 = 1099511628211
_MASK64 = 0xFFFFFFFFFFFFFFFF
_SEPARATOR = b"\xff"


def fingerprint(labels: Mapping[str, str]) -> str:
    """The Alertmanager fingerprint of a label set (`{}` gives `cbf29ce484222325`)."""
    value = _OFFSET64
    for name in sorted(labels):
        for part in (name.encode("utf-8"), labels[name].encode("utf-8")):
            for byte in part + _SEPARATOR:
                value = ((value ^ byte) * _PRIME64) & _MASK64
    return f"{value:016x}"


_GO_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\v": "\\v", '"': '\\"', "\\": "\\\\",
}


def go_quote(text: str) -> str:
    """Go's `strconv.Quote`, which Alertmanager uses for label values in group keys."""
    out = ['"']
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def label_set_string(labels: Mapping[str, str]) -> str:
    """prometheus/common `model.LabelSet.String()`: `{a="1", b="2"}`, names sorted."""
    return "{" + ", ".join(f"{name}={go_quote(labels[name])}" for name in sorted(labels)) + "}"
