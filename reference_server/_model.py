"""A small decoder-only transformer with a slot-based KV cache.

Token + learned position embeddings, `n_layers` pre-LayerNorm blocks (causal multi-head
attention, GELU MLP), a final LayerNorm and an output head tied to the token embedding.
Weights are random from a fixed seed: the fleet needs real compute, not a good model, and
nothing is downloaded.

The KV cache holds `num_slots` sequences of up to `context_len` tokens each. `prefill` writes a
prompt into one slot; `decode` advances a whole batch of slots by one token each: their keys
and values are gathered to the longest length in the batch and shorter ones are masked, so
sequences of different lengths decode in one batched forward pass.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ._tokenizer import VOCAB_SIZE


@dataclass(frozen=True, slots=True)
class ModelConfig:
    vocab_size: int = VOCAB_SIZE
    n_layers: int = 4
    d_model: int = 256
    n_heads: int = 4
    context_len: int = 512
    mlp_ratio: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        for field in ("vocab_size", "n_layers", "d_model", "n_heads", "context_len", "mlp_ratio"):
            if getattr(self, field) < 1:
                raise ValueError(f"ModelConfig.{field} must be >= 1, got {getattr(self, field)}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"ModelConfig.d_model ({self.d_model}) must be divisible by "
                f"n_heads ({self.n_heads})"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


def resolve_device(device: str) -> tuple[torch.device, torch.dtype]:
    """`auto`: CUDA with bfloat16 when available, else CPU float32; `cpu`; `cuda` (must exist)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return torch.device("cpu"), torch.float32
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA device")
        return torch.device("cuda"), torch.bfloat16
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


# cuDNN attention builds (slowly: ~15 ms on an H100) a new plan for every new sequence length;
# decoding changes the length at every step, so it is left out on CUDA.
_CUDA_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


@contextlib.contextmanager
def _attention_backends(device: torch.device) -> Iterator[None]:
    if device.type == "cuda":
        with sdpa_kernel(_CUDA_ATTENTION):
            yield
    else:
        yield


class KVCache:
    """Keys and values of `num_slots` sequences, each a tensor
    [layers, slots, context, heads, head_dim]."""

    def __init__(
        self, config: ModelConfig, num_slots: int, *, device: torch.device, dtype: torch.dtype
    ) -> None:
        shape = (config.n_layers, num_slots, config.context_len, config.n_heads, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.num_slots = num_slots
        self.context_len = config.context_len

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2


class BlockStore:
    """Keys and values of whole KV blocks ([layers, blocks, block_size, heads, head_dim]), kept
    for prefix caching: a full block of a finished sequence outlives its slot here, and a later
    prompt with the same prefix copies it back instead of recomputing it."""

    def __init__(
        self, config: ModelConfig, num_blocks: int, block_size: int, *, device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        shape = (config.n_layers, num_blocks, block_size, config.n_heads, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.block_size = block_size

    def save(self, cache: KVCache, slot: int, position_block: int, block: int) -> None:
        """Copy the slot's tokens of block index `position_block` into store block `block`."""
        start = position_block * self.block_size
        self.k[:, block] = cache.k[:, slot, start:start + self.block_size]
        self.v[:, block] = cache.v[:, slot, start:start + self.block_size]

    def load(self, cache: KVCache, slot: int, blocks: tuple[int, ...]) -> None:
        """Copy store `blocks` into the slot's first len(blocks) blocks of positions."""
        if not blocks:
            return
        index = torch.tensor(blocks, device=self.k.device)
        end = len(blocks) * self.block_size
        shape = (self.k.shape[0], end, self.k.shape[3], self.k.shape[4])
        cache.k[:, slot, :end] = self.k[:, index].reshape(shape)
        cache.v[:, slot, :end] = self.v[:, index].reshape(shape)

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2


class _Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.extra_matmuls = 0
        """The slow-kernel fault: this many extra matmuls in this block's MLP (results
        discarded: the output is unchanged, only the time grows, as with a bad kernel)."""
        d = config.d_model
        self.n_heads = config.n_heads
        self.head_dim = config.head_dim
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, config.mlp_ratio * d)
        self.fc_out = nn.Linear(config.mlp_ratio * d, d)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(self.n_heads * self.head_dim, dim=-1)
        shape = (b, t, self.n_heads, self.head_dim)
        return q.view(shape), k.view(shape), v.view(shape)

    def _finish(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = attended.shape
        x = x + self.proj(attended.transpose(1, 2).reshape(b, t, -1))
        hidden = F.gelu(self.fc(self.ln2(x)))
        if self.extra_matmuls:
            self._slow_kernel(hidden)
        out: torch.Tensor = x + self.fc_out(hidden)
        return out

    def _slow_kernel(self, hidden: torch.Tensor) -> None:
        flat = hidden.reshape(-1, hidden.shape[-1])
        weight_t = self.fc_out.weight.T  # the MLP's down projection again, without its bias
        for _ in range(self.extra_matmuls):
            torch.mm(flat, weight_t)

    def forward_full(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Causal attention over x [B, T, D]; also returns this layer's k and v [B, T, H, Dh]."""
        q, k, v = self._split(x)
        attended = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        return self._finish(x, attended), k, v

    def forward_prefill(
        self, x: torch.Tensor, cache_k: torch.Tensor, cache_v: torch.Tensor, slot: int,
        start: int,
    ) -> torch.Tensor:
        """Prompt tokens x [1, T, D] at positions start..start+T-1 of `slot`, attending to the
        slot's cached positions before `start` too (a prefix-cache hit put them there)."""
        q, k, v = self._split(x)
        length = start + x.shape[1]
        cache_k[slot, start:length] = k[0]
        cache_v[slot, start:length] = v[0]
        if start == 0:
            attended = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        else:
            keys = cache_k[slot, :length].transpose(0, 1)[None]  # [1, H, length, Dh]
            values = cache_v[slot, :length].transpose(0, 1)[None]
            rows = torch.arange(start, length, device=x.device)[:, None]
            mask = torch.arange(length, device=x.device)[None, :] <= rows  # [T, length]
            attended = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values,
                                                      attn_mask=mask)
        return self._finish(x, attended)

    def forward_decode(
        self,
        x: torch.Tensor,
        cache_k: torch.Tensor,
        cache_v: torch.Tensor,
        slots: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        length: int,
    ) -> torch.Tensor:
        """One new token per sequence: x [B, 1, D]; cache_k/v are this layer's [S, C, H, Dh]."""
        q, k, v = self._split(x)
        cache_k[slots, positions] = k[:, 0]
        cache_v[slots, positions] = v[:, 0]
        keys = cache_k[slots, :length].transpose(1, 2)  # [B, H, length, Dh], padded
        values = cache_v[slots, :length].transpose(1, 2)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values, attn_mask=mask)
        return self._finish(x, attended)


class TinyTransformer(nn.Module):
    """The reference model. `forward` is the plain full pass (no cache); `prefill`/`decode`
    are the cached passes the engine uses."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ModelConfig()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(config.seed)
        try:
            self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
            self.pos_emb = nn.Embedding(config.context_len, config.d_model)
            self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
            self.ln_f = nn.LayerNorm(config.d_model)
            self._init_weights()
        finally:
            torch.random.set_rng_state(generator_state)
        self.eval()
        self.requires_grad_(False)

    def _init_weights(self) -> None:
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layers)
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(param)
            elif "ln" in name:
                nn.init.ones_(param)
            elif name.endswith(("proj.weight", "fc_out.weight")):
                nn.init.normal_(param, std=residual_std)
            else:
                nn.init.normal_(param, std=0.02)

    @property
    def device(self) -> torch.device:
        return self.tok_emb.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.tok_emb.weight.dtype

    @property
    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.parameters())

    def new_cache(self, num_slots: int) -> KVCache:
        return KVCache(self.config, num_slots, device=self.device, dtype=self.dtype)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        normed: torch.Tensor = self.ln_f(x)
        return (normed @ self.tok_emb.weight.T).float()

    def _layers(self) -> list[_Block]:
        return [cast(_Block, block) for block in self.blocks]

    def _check_length(self, length: int) -> None:
        if length > self.config.context_len:
            raise ValueError(
                f"sequence of {length} tokens exceeds the context of {self.config.context_len}"
            )

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, V] (float32) of tokens [B, T], causal, without any cache."""
        self._check_length(tokens.shape[1])
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tok_emb(tokens) + self.pos_emb(positions)
        with _attention_backends(tokens.device):
            for block in self._layers():
                x, _, _ = block.forward_full(x)
        return self._logits(x)

    def new_block_store(self, num_blocks: int, block_size: int) -> BlockStore:
        return BlockStore(self.config, num_blocks, block_size, device=self.device,
                          dtype=self.dtype)

    def set_slow_kernel(self, layer: int | None, extra_matmuls: int = 0) -> None:
        """The slow-kernel fault on `layer` (None: cleared everywhere)."""
        layers = self._layers()
        if layer is not None and not 0 <= layer < len(layers):
            raise ValueError(f"layer must be in 0..{len(layers) - 1}, got {layer}")
        for index, block in enumerate(layers):
            block.extra_matmuls = extra_matmuls if index == layer else 0

    @torch.inference_mode()
    def prefill(
        self, tokens: torch.Tensor, cache: KVCache, slot: int, *, all_logits: bool = False,
        start: int = 0,
    ) -> torch.Tensor:
        """Run prompt tokens [T] into `slot` of `cache` at positions start..start+T-1 (the
        slot's positions before `start` must already hold this prompt's prefix); return the
        logits [V] of its last position ([T, V] with `all_logits`)."""
        length = start + tokens.shape[0]
        self._check_length(length)
        positions = torch.arange(start, length, device=tokens.device)
        x = (self.tok_emb(tokens) + self.pos_emb(positions)).unsqueeze(0)
        with _attention_backends(tokens.device):
            for layer, block in enumerate(self._layers()):
                x = block.forward_prefill(x, cache.k[layer], cache.v[layer], slot, start)
        logits = self._logits(x[0] if all_logits else x[0, -1])
        return logits

    @torch.inference_mode()
    def decode(
        self, tokens: torch.Tensor, cache: KVCache, slots: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """One batched step: token b of tokens [B] goes to position positions[b] of slot
        slots[b] (all earlier positions of that slot must be filled). Returns logits [B, V]."""
        length = int(positions.max().item()) + 1
        self._check_length(length)
        x = (self.tok_emb(tokens) + self.pos_emb(positions)).unsqueeze(1)
        # [B, 1, 1, length]: each sequence sees its own positions, never the padding.
        mask = (torch.arange(length, device=tokens.device)[None, :] <= positions[:, None])
        mask = mask[:, None, None, :]
        with _attention_backends(tokens.device):
            for layer, block in enumerate(self._layers()):
                x = block.forward_decode(
                    x, cache.k[layer], cache.v[layer], slots, positions, mask, length
                )
        return self._logits(x[:, 0])


def load_model(config: ModelConfig | None = None, *, device: str = "auto") -> TinyTransformer:
    """The reference model on `device` (see `resolve_device`), random weights from config.seed."""
    torch_device, dtype = resolve_device(device)
    return TinyTransformer(config).to(device=torch_device, dtype=dtype)
