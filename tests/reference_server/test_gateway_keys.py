"""Client API keys and their limits, without a server: loading keys (environment variable and
keys file), the token buckets with a hand-driven clock, and reading usage out of answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_server import (
    ApiKey,
    FleetConfig,
    FleetConfigError,
    load_api_keys,
    load_api_keys_file,
    parse_api_keys_env,
)
from reference_server._api_keys import ApiKeyring, key_id
from reference_server._gateway_access import take_usage_events, usage_of, with_usage_requested
from reference_server._rate_limit import RateLimiter, Refusal


def test_keys_from_the_environment_get_hash_names_that_do_not_contain_the_key() -> None:
    keys = parse_api_keys_env(" sk-first-key-1 ,, sk-second-key-2,")
    assert [k.key for k in keys] == ["sk-first-key-1", "sk-second-key-2"]
    assert [k.name for k in keys] == [key_id("sk-first-key-1"), key_id("sk-second-key-2")]
    for key in keys:
        assert key.name.startswith("key-") and len(key.name) == 14
        assert key.key not in key.name and key.key not in repr(key)
        assert (key.requests_per_minute, key.tokens_per_minute) == (None, None)


def test_a_keys_file_gives_names_limits_and_keys_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(
        "keys:\n"
        "  - name: team-a\n    key: sk-team-a-0123\n    requests_per_minute: 600\n"
        "    tokens_per_minute: 100000\n"
        "  - {name: batch, key_env: BATCH_KEY}\n", encoding="utf-8")
    keys = load_api_keys_file(path, {"BATCH_KEY": " sk-batch-9876 "})
    assert keys == (ApiKey("team-a", "sk-team-a-0123", 600.0, 100000.0),
                    ApiKey("batch", "sk-batch-9876"))


def test_a_json_keys_file_and_the_environment_add_up_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"keys": [{"name": "a", "key": "sk-aaaaaaaa", "tokens_per_minute": 5}]}',
                    encoding="utf-8")
    keys = load_api_keys(env_text="sk-aaaaaaaa,sk-bbbbbbbb", file=path, env={})
    assert [(k.name, k.key, k.tokens_per_minute) for k in keys] == [
        ("a", "sk-aaaaaaaa", 5.0), (key_id("sk-bbbbbbbb"), "sk-bbbbbbbb", None)]
    assert load_api_keys(env_text=None, file=None) == ()


@pytest.mark.parametrize(("text", "message"), [
    ("keys: [", "KEYS: is not valid YAML or JSON at line 1"),
    ("keys: []", "KEYS: keys: must be a non-empty list of keys"),
    ("- a", "KEYS: keys: must be a non-empty list of keys"),
    ("keys: [7]", "KEYS: keys[0]: must be a mapping with name and key, got 7"),
    ("keys: [{name: a, key: sk-aaaaaaaa, rpm: 3}]",
     "KEYS: keys[0].rpm: unknown field; known: key, key_env, name, requests_per_minute, "
     "tokens_per_minute"),
    ("keys: [{name: 'a b', key: sk-aaaaaaaa}]",
     "KEYS: keys[0].name: must be 1-64 letters, digits or _.:- (it becomes a metric label), "
     "got 'a b'"),
    ("keys: [{name: a}]", "KEYS: keys[0]: needs exactly one of key and key_env"),
    ("keys: [{name: a, key: sk-aaaaaaaa, key_env: X}]",
     "KEYS: keys[0]: needs exactly one of key and key_env"),
    ("keys: [{name: a, key: short}]",
     "KEYS: keys[0].key: must be a string of at least 8 characters without spaces or commas"),
    ("keys: [{name: a, key_env: NOT_SET_ANYWHERE}]",
     "KEYS: keys[0].key_env: names an environment variable that is not set: "
     "'NOT_SET_ANYWHERE'"),
    ("keys: [{name: a, key: sk-aaaaaaaa}, {name: b, key: sk-bbbbbbbb, tokens_per_minute: -1}]",
     "KEYS: keys[1].tokens_per_minute: must be a positive number per minute, got -1"),
    ("keys: [{name: a, key: sk-aaaaaaaa, requests_per_minute: true}]",
     "KEYS: keys[0].requests_per_minute: must be a positive number per minute, got True"),
    ("keys: [{name: a, key: sk-aaaaaaaa}, {name: a, key: sk-bbbbbbbb}]",
     "api_keys: the name 'a' is given to two keys"),
], ids=["yaml", "empty", "not a mapping", "entry", "unknown field", "name", "no key",
        "two keys", "short key", "unset env", "negative limit", "bool limit", "same name"])
def test_a_bad_keys_file_is_refused_naming_the_entry_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FleetConfigError) as caught:
        load_api_keys_file(path, {})
    assert str(caught.value) == message.replace("KEYS", f"api_keys_file {path}")


def test_a_missing_keys_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FleetConfigError) as caught:
        load_api_keys_file(tmp_path / "nope.yaml")
    assert str(caught.value) == (f"api_keys_file {tmp_path / 'nope.yaml'}: cannot be read: "
                                 "No such file or directory")


def test_the_keyring_finds_only_the_exact_key() -> None:
    ring = ApiKeyring(parse_api_keys_env("sk-first-key-1"))
    assert ring.find("sk-first-key-1") is not None
    for wrong in ("sk-first-key-", "sk-first-key-12", "", "SK-FIRST-KEY-1"):
        assert ring.find(wrong) is None


def test_the_fleet_config_never_shows_its_keys() -> None:
    config = FleetConfig(admin_token="admin-token-1234",
                         api_keys=parse_api_keys_env("sk-secret-key-77"))
    assert "sk-secret-key-77" not in repr(config)


def test_the_request_bucket_refuses_the_request_over_the_limit_and_says_when_to_retry() -> None:
    limiter = RateLimiter((ApiKey("a", "sk-aaaaaaaa", requests_per_minute=2),), now_s=0.0)
    assert [limiter.admit("a", 0.0) for _ in range(2)] == [None, None]
    assert limiter.admit("a", 0.0) == Refusal("requests", 2.0, 30)
    assert limiter.admit("a", 10.0) == Refusal("requests", 2.0, 20)  # refusals take nothing
    assert limiter.admit("a", 30.0) is None
    assert limiter.admit("unlimited", 30.0) is None


def test_the_token_bucket_refuses_once_usage_drove_it_below_zero() -> None:
    limiter = RateLimiter((ApiKey("a", "sk-aaaaaaaa", tokens_per_minute=60),), now_s=0.0)
    assert limiter.admit("a", 0.0) is None
    limiter.charge_tokens("a", 90, 0.0)  # 60 - 90 = -30 tokens: 31 s to get 1 back
    assert limiter.admit("a", 0.0) == Refusal("tokens", 60.0, 31)
    assert limiter.admit("a", 29.5) == Refusal("tokens", 60.0, 2)
    assert limiter.admit("a", 31.0) is None
    limiter.charge_tokens("a", 10_000, 1000.0)  # a full minute's refill caps at 60
    assert limiter.admit("a", 1000.0) == Refusal("tokens", 60.0, 9941)


def test_usage_is_read_from_answers_and_the_unasked_usage_chunk_is_taken_out() -> None:
    assert usage_of(b'{"usage": {"prompt_tokens": 3, "completion_tokens": 5}}') == (3, 5)
    assert usage_of(b'{"choices": []}') is None
    assert usage_of(b'{"usage": null}') is None
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":4}}'
    chunk = b'data: {"choices":[{"text":"x"}]}\n\n' + usage + b"\n\ndata: [DONE]\n\n"
    assert take_usage_events(chunk, strip=True) == (
        b'data: {"choices":[{"text":"x"}]}\n\ndata: [DONE]\n\n', (2, 4))
    assert take_usage_events(chunk, strip=False) == (chunk, (2, 4))
    assert take_usage_events(b"data: [DONE]\n\n", strip=True) == (b"data: [DONE]\n\n", None)


def test_the_gateway_asks_the_node_for_usage_keeping_the_other_stream_options() -> None:
    assert with_usage_requested({"stream": True, "stream_options": {"x": 1}}) == (
        b'{"stream": true, "stream_options": {"x": 1, "include_usage": true}}')
