"""The part of Prometheus's alert templating that rules actually use.

Prometheus expands rule labels and annotations with Go's text/template and the variables
`$labels` (the sample's own labels, without the rule's), `$value` (the sample value),
`$externalURL` and `$externalLabels`. Supported here, with the same output Prometheus gives:

- `{{ $labels.NAME }}`, `{{ .Labels.NAME }}`, `{{ index $labels "NAME" }}` (a missing label
  expands to the empty string, as in Prometheus);
- `{{ $value }}`, `{{ .Value }}` (Go's `%v` of a float64: `0.5`, `1e+06`, `NaN`, `+Inf`);
- `{{ $externalURL }}`;
- the functions `humanize`, `humanizePercentage`, `printf` (verbs f, e, g, s, v),
  `toUpper`, `toLower`, called directly or through a pipe (`{{ $value | humanize }}`);
- the `{{- ` / ` -}}` whitespace trimming and `{{/* comments */}}`.

Any other action is left exactly as written, so nothing is silently lost.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal

_Value = str | float


class _Unsupported(Exception):
    """The action uses something this expander does not implement."""


def go_float(value: float) -> str:
    """Go's `fmt` `%v` of a float64: the shortest digits that round-trip, in `%e` form when
    the decimal exponent is below -4 or at least 6 (`1e+06`, `123456.5`, `1e-05`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    point = len(digits) + exponent  # the decimal point sits after this many digits
    neg = "-" if sign else ""
    decimal_exponent = point - 1
    if decimal_exponent < -4 or decimal_exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mantissa}e{'-' if decimal_exponent < 0 else '+'}{abs(decimal_exponent):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def _go_g4(value: float) -> str:
    """Go's `%.4g`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"


def _to_float(value: _Value) -> float:
    if isinstance(value, float):
        return value
    try:
        return float(value)
    except ValueError:
        raise _Unsupported from None


def humanize(value: _Value) -> str:
    """Prometheus's `humanize`: SI prefixes, 4 significant digits (`1234567` -> `1.235M`)."""
    number = _to_float(value)
    if number == 0 or math.isnan(number) or math.isinf(number):
        return _go_g4(number)
    prefix = ""
    if abs(number) >= 1:
        for candidate in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(number) < 1000:
                break
            prefix = candidate
            number /= 1000
    else:
        for candidate in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(number) >= 1:
                break
            prefix = candidate
            number *= 1000
    return f"{_go_g4(number)}{prefix}"


def humanize_percentage(value: _Value) -> str:
    """Prometheus's `humanizePercentage`: `0.4545` -> `45.45%`."""
    return f"{_go_g4(_to_float(value) * 100)}%"


_VERB = re.compile(
    r"%(?P<flags>[-+ 0]*)(?P<width>\d+)?(?:\.(?P<precision>\d+))?(?P<verb>[a-zA-Z%])"
)


def _printf(template: _Value, *args: _Value) -> str:
    """Go's `fmt.Sprintf` for the verbs alert templates use."""
    if not isinstance(template, str):
        raise _Unsupported
    remaining = list(args)

    def one(match: re.Match[str]) -> str:
        verb = match["verb"]
        if verb == "%":
            return "%"
        if not remaining:
            raise _Unsupported
        arg = remaining.pop(0)
        spec = f"{match['flags']}{match['width'] or ''}"
        precision = match["precision"]
        if verb in "feEgG" and not (verb in "gG" and precision is None):
            number = _to_float(arg)
            if not math.isfinite(number):
                return format(_go_g4(number), f">{match['width'] or ''}")
            return ("%" + spec + (f".{precision}" if precision is not None else "") + verb) % number
        if verb in "gv" and isinstance(arg, float) and precision is None:
            return format(go_float(arg), f">{match['width'] or ''}")
        if verb in "sv" and isinstance(arg, str) and precision is None:
            return ("%" + spec + "s") % arg
        raise _Unsupported

    result = _VERB.sub(one, template)
    if remaining:
        raise _Unsupported
    return result


_FUNCTIONS: dict[str, Callable[..., str]] = {
    "humanize": humanize,
    "humanizePercentage": humanize_percentage,
    "printf": _printf,
    "toUpper": lambda text: str(text).upper(),
    "toLower": lambda text: str(text).lower(),
}

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+')
_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_LABEL = re.compile(rf"(?:\$labels|\.Labels)\.(?P<name>{_NAME})")
_EXTERNAL_LABEL = re.compile(rf"(?:\$externalLabels|\.ExternalLabels)\.(?P<name>{_NAME})")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class _Context:
    def __init__(self, labels: Mapping[str, str], value: float, external_url: str) -> None:
        self.labels = labels
        self.value = value
        self.external_url = external_url

    def operand(self, token: str) -> _Value:
        if token in ("$value", ".Value"):
            return self.value
        if token in ("$externalURL", ".ExternalURL"):
            return self.external_url
        if (match := _LABEL.fullmatch(token)) is not None:
            return self.labels.get(match["name"], "")
        if _EXTERNAL_LABEL.fullmatch(token) is not None:
            return ""
        if token.startswith('"'):
            try:
                return str(json.loads(token))
            except ValueError:
                raise _Unsupported from None
        if token.startswith("`"):
            return token[1:-1]
        if _NUMBER.fullmatch(token):
            return float(token)
        raise _Unsupported

    def command(self, tokens: list[str], piped: _Value | None) -> _Value:
        head, args = tokens[0], tokens[1:]
        if head == "index":
            if piped is not None or len(args) != 2 or args[0] not in ("$labels", ".Labels"):
                raise _Unsupported
            name = self.operand(args[1])
            if not isinstance(name, str):
                raise _Unsupported
            return self.labels.get(name, "")
        function = _FUNCTIONS.get(head)
        if function is None:
            if args or piped is not None:
                raise _Unsupported
            return self.operand(head)
        values = [self.operand(arg) for arg in args]
        if piped is not None:
            values.append(piped)
        try:
            return function(*values)
        except TypeError:
            raise _Unsupported from None

    def action(self, text: str) -> str:
        tokens = _TOKEN.findall(text)
        commands: list[list[str]] = [[]]
        for token in tokens:
            if token == "|":
                commands.append([])
            else:
                commands[-1].append(token)
        if any(not command for command in commands):
            raise _Unsupported
        result: _Value | None = None
        for command in commands:
            result = self.command(command, result)
        assert result is not None
        return go_float(result) if isinstance(result, float) else result


def expand_template(
    text: str, *, labels: Mapping[str, str], value: float, external_url: str = ""
) -> str:
    """Expand the supported actions of `text`; unsupported ones stay as written."""
    if "{{" not in text:
        return text
    context = _Context(labels, value, external_url)
    out: list[str] = []
    position = 0
    trim_next = False
    while True:
        start = text.find("{{", position)
        end = text.find("}}", start + 2) if start >= 0 else -1
        if start < 0 or end < 0:
            out.append(_trimmed_left(text[position:], trim_next))
            break
        inner = text[start + 2 : end]
        trim_left = inner[:2] in ("- ", "-\t", "-\n", "-\r")
        trim_right = inner[-2:] in (" -", "\t-", "\n-", "\r-")
        body = inner[1 if trim_left else 0 : len(inner) - 1 if trim_right else len(inner)].strip()
        try:
            expanded = "" if _is_comment(body) else context.action(body)
        except _Unsupported:
            out.append(_trimmed_left(text[position:start], trim_next))
            out.append(text[start : end + 2])
            trim_next = False
        else:
            before = _trimmed_left(text[position:start], trim_next)
            out.append(before.rstrip(" \t\r\n") if trim_left else before)
            out.append(expanded)
            trim_next = trim_right
        position = end + 2
    return "".join(out)


def _is_comment(body: str) -> bool:
    return body.startswith("/*") and body.endswith("*/")


def _trimmed_left(text: str, trim: bool) -> str:
    return text.lstrip(" \t\r\n") if trim else text
