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


class _Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
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
        out: torch.Tensor = x + self.fc_out(F.gelu(self.fc(self.ln2(x))))
        return out

    def forward_full(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Causal attention over x [B, T, D]; also returns this layer's k and v [B, T, H, Dh]."""
        q, k, v = self._split(x)
        attended = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        return self._finish(x, attended), k, v

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

    @torch.inference_mode()
    def prefill(
        self, tokens: torch.Tensor, cache: KVCache, slot: int, *, all_logits: bool = False
    ) -> torch.Tensor:
        """Run a prompt tokens [T] into `slot` of `cache` (positions 0..T-1); return the
        logits [V] of its last position ([T, V] with `all_logits`)."""
        length = tokens.shape[0]
        self._check_length(length)
        positions = torch.arange(length, device=tokens.device)
        x = (self.tok_emb(tokens) + self.pos_emb(positions)).unsqueeze(0)
        with _attention_backends(tokens.device):
            for layer, block in enumerate(self._layers()):
                x, k, v = block.forward_full(x)
                cache.k[layer, slot, :length] = k[0]
                cache.v[layer, slot, :length] = v[0]
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
