"""The reference model and tokenizer: the KV cache computes exactly what the plain pass does."""

from __future__ import annotations

import pytest
import torch

from reference_server._model import ModelConfig, TinyTransformer, load_model, resolve_device
from reference_server._tokenizer import BOS_ID, EOS_ID, VOCAB_SIZE, ByteTokenizer

TINY = ModelConfig(n_layers=2, d_model=64, n_heads=4, context_len=64, seed=1)


@pytest.fixture(scope="module")
def model() -> TinyTransformer:
    return load_model(TINY, device="cpu")


# ---- tokenizer --------------------------------------------------------------------------


def test_tokenizer_round_trips_any_text() -> None:
    tok = ByteTokenizer()
    text = "GPU ünïcödé 🚀 incident"
    ids = tok.encode(text)
    assert ids[0] == BOS_ID and all(0 <= i < 256 for i in ids[1:])
    assert tok.decode(ids) == text
    assert tok.encode(text, add_bos=False) == list(text.encode())
    assert tok.vocab_size == VOCAB_SIZE == 258


def test_tokenizer_decodes_invalid_utf8_safely() -> None:
    tok = ByteTokenizer()
    assert tok.decode([0xFF, 0x41, EOS_ID]) == "\ufffdA"


def test_stream_decoder_never_emits_half_a_character() -> None:
    decoder = ByteTokenizer().stream_decoder()
    rocket = "🚀".encode()  # 4 bytes
    pieces = [decoder.feed(b) for b in rocket]
    assert pieces == ["", "", "", "🚀"]
    assert decoder.feed(0x41) == "A"
    assert decoder.feed(rocket[0]) == ""
    assert decoder.flush() == "\ufffd"  # the stream ended inside a character


# ---- model ------------------------------------------------------------------------------


def test_kv_cache_decode_matches_full_forward(model: TinyTransformer) -> None:
    cache = model.new_cache(2)
    prompt = torch.tensor(ByteTokenizer().encode("The on-call engineer"))
    prefill = model.prefill(prompt, cache, slot=1, all_logits=True)
    torch.testing.assert_close(prefill, model(prompt[None])[0], rtol=1e-4, atol=1e-5)

    sequence = prompt.tolist()
    for token in (72, 105, 33, 200, 7, 99):
        logits = model.decode(
            torch.tensor([token]), cache, torch.tensor([1]), torch.tensor([len(sequence)])
        )
        sequence.append(token)
        full = model(torch.tensor([sequence]))[0, -1]
        torch.testing.assert_close(logits[0], full, rtol=1e-4, atol=1e-5)


def test_batched_decode_of_different_lengths_matches_each_alone(model: TinyTransformer) -> None:
    """Padding to a common length must not leak into the shorter sequences."""
    cache = model.new_cache(3)
    sequences = {0: [BOS_ID, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 2: [BOS_ID, 50], 1: [BOS_ID, 9, 9, 9]}
    for slot, tokens in sequences.items():
        model.prefill(torch.tensor(tokens), cache, slot)
    slots = sorted(sequences)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        new = torch.randint(0, 256, (len(slots),), generator=generator)
        logits = model.decode(
            new, cache, torch.tensor(slots), torch.tensor([len(sequences[s]) for s in slots])
        )
        for row, slot in enumerate(slots):
            sequences[slot].append(int(new[row]))
            full = model(torch.tensor([sequences[slot]]))[0, -1]
            torch.testing.assert_close(logits[row], full, rtol=1e-4, atol=1e-5)


def test_weights_come_from_the_seed() -> None:
    a, b = TinyTransformer(TINY), TinyTransformer(TINY)
    c = TinyTransformer(ModelConfig(n_layers=2, d_model=64, n_heads=4, context_len=64, seed=2))
    assert torch.equal(a.tok_emb.weight, b.tok_emb.weight)
    assert not torch.equal(a.tok_emb.weight, c.tok_emb.weight)
    # the global RNG is left as it was
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    TinyTransformer(TINY)
    assert torch.equal(torch.rand(3), expected)


def test_default_model_loads_and_runs() -> None:
    model = load_model(device="cpu")
    config = model.config
    assert (config.n_layers, config.d_model, config.n_heads, config.context_len) == (4, 256, 4, 512)
    assert model.dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) > 3_000_000
    logits = model(torch.tensor([ByteTokenizer().encode("hello")]))
    assert logits.shape == (1, 6, VOCAB_SIZE) and torch.isfinite(logits).all()


def test_context_is_enforced(model: TinyTransformer) -> None:
    with pytest.raises(ValueError, match="exceeds the context of 64"):
        model(torch.zeros((1, 65), dtype=torch.long))


def test_config_and_device_validation() -> None:
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(d_model=66, n_heads=4)
    with pytest.raises(ValueError, match="n_layers"):
        ModelConfig(n_layers=0)
    assert resolve_device("cpu") == (torch.device("cpu"), torch.float32)
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    if torch.cuda.is_available():
        assert resolve_device("auto") == (torch.device("cuda"), torch.bfloat16)
    else:
        assert resolve_device("auto") == (torch.device("cpu"), torch.float32)
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")
