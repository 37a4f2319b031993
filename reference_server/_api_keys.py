"""Client API keys of the gateway: who may call `/v1/*`, under which name and limits.

Keys come from `INFEROPS_API_KEYS` (comma-separated; each key gets a name derived from a
hash, so the key itself never becomes a metric label or a log word) or from a keys file
(YAML or JSON) that names each key and may give it limits:

    keys:
      - name: team-a
        key: sk-team-a-0123456789
        requests_per_minute: 600
        tokens_per_minute: 100000
      - {name: batch, key_env: BATCH_API_KEY}

`key_env` reads the key from an environment variable, so the file need not hold secrets.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._exceptions import FleetConfigError

ENV_API_KEYS = "INFEROPS_API_KEYS"
"""Comma-separated client API keys (no names, no limits)."""

GENERATED_KEY_PREFIX = "sk-inferops-"
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_KEY_FIELDS = frozenset({"name", "key", "key_env", "requests_per_minute", "tokens_per_minute"})


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One client key. `name` is what metrics and logs show; the key is never in `repr`.
    A limit of None means unlimited."""

    name: str
    key: str = field(repr=False)
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None


def key_id(key: str) -> str:
    """A short, non-reversible name for a key that came without one."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:10]


def generate_api_key() -> str:
    return GENERATED_KEY_PREFIX + secrets.token_urlsafe(24)


def parse_api_keys_env(text: str) -> tuple[ApiKey, ...]:
    """Keys from `INFEROPS_API_KEYS`: comma-separated, blanks ignored, unlimited."""
    keys = [part.strip() for part in text.split(",") if part.strip()]
    for index, key in enumerate(keys):
        _check_key(key, f"{ENV_API_KEYS}[{index}]")
    return _unique(ApiKey(key_id(key), key) for key in keys)


def load_api_keys_file(path: Path, env: Mapping[str, str] | None = None) -> tuple[ApiKey, ...]:
    """Keys from a YAML or JSON file (JSON is YAML); errors name the file, entry and field."""
    where = f"api_keys_file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise FleetConfigError(where, f"cannot be read: {error.strerror or error}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise FleetConfigError(where, f"is not valid YAML or JSON{line}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise FleetConfigError(f"{where}: keys", "must be a non-empty list of keys")
    environment = os.environ if env is None else env
    return _unique(_entry(entry, f"{where}: keys[{i}]", environment)
                   for i, entry in enumerate(entries))


def load_api_keys(
    *, env_text: str | None, file: Path | None, env: Mapping[str, str] | None = None
) -> tuple[ApiKey, ...]:
    """The keys the fleet accepts: the file's and the environment variable's, together."""
    keys: list[ApiKey] = []
    if file is not None:
        keys.extend(load_api_keys_file(file, env))
    if env_text:
        keys.extend(parse_api_keys_env(env_text))
    return _unique(keys)


def _entry(entry: Any, where: str, env: Mapping[str, str]) -> ApiKey:
    if not isinstance(entry, dict):
        raise FleetConfigError(where, f"must be a mapping with name and key, got {entry!r:.40}")
    unknown = sorted(set(map(str, entry)) - _KEY_FIELDS)
    if unknown:
        raise FleetConfigError(f"{where}.{unknown[0]}",
                               f"unknown field; known: {', '.join(sorted(_KEY_FIELDS))}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise FleetConfigError(f"{where}.name", "must be 1-64 letters, digits or _.:- "
                               f"(it becomes a metric label), got {name!r}")
    if ("key" in entry) == ("key_env" in entry):
        raise FleetConfigError(where, "needs exactly one of key and key_env")
    if "key_env" in entry:
        variable = entry["key_env"]
        if not isinstance(variable, str) or not env.get(variable, "").strip():
            raise FleetConfigError(f"{where}.key_env",
                                   f"names an environment variable that is not set: {variable!r}")
        key = env[variable].strip()
    else:
        key = entry["key"]
        _check_key(key, f"{where}.key")
    limits = {limit: _limit(entry.get(limit), f"{where}.{limit}")
              for limit in ("requests_per_minute", "tokens_per_minute")}
    return ApiKey(name, key, **limits)


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or len(key) < 8 or any(c.isspace() or c == "," for c in key):
        raise FleetConfigError(where, "must be a string of at least 8 characters without "
                               "spaces or commas")


def _limit(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value <= 0):
        raise FleetConfigError(where, f"must be a positive number per minute, got {value!r}")
    return float(value)


def _unique(keys: Iterable[ApiKey]) -> tuple[ApiKey, ...]:
    seen_keys: set[str] = set()
    seen_names: set[str] = set()
    result: list[ApiKey] = []
    for key in keys:
        if key.key in seen_keys:
            continue  # the same key given twice (file and environment): the first wins
        if key.name in seen_names:
            raise FleetConfigError("api_keys", f"the name {key.name!r} is given to two keys")
        seen_keys.add(key.key)
        seen_names.add(key.name)
        result.append(key)
    return tuple(result)


class ApiKeyring:
    """Looks a presented key up by its SHA-256, so no comparison leaks a prefix of a key."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._by_digest = {_digest(key.key): key for key in keys}
        if not self._by_digest:
            raise ValueError("an API keyring needs at least one key")

    def __len__(self) -> int:
        return len(self._by_digest)

    def find(self, presented: str) -> ApiKey | None:
        return self._by_digest.get(_digest(presented))


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()
