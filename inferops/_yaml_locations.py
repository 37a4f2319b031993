"""Map a field path inside a YAML document to the line it was written on.

Validation libraries report *which* field is wrong; a user needs *where*. Composing the
document keeps every node's start mark, so an error can say `file:line: field: reason`.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml


def compose_document(text: str) -> yaml.Node | None:
    return yaml.compose(text, Loader=yaml.SafeLoader)


def line_of(root: yaml.Node | None, path: Sequence[str | int]) -> int | None:
    """1-based line of the deepest node of `path` that exists in the document."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def format_path(path: Sequence[str | int]) -> str:
    """`("scrape_configs", 0, "job_name")` -> `scrape_configs[0].job_name`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "<document>"
