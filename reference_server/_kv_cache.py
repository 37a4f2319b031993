"""The engine's KV-cache manager: block tables of sequences, prefix reuse, growth, release.

The model keeps each running sequence's keys and values in a slot (contiguous positions,
what its attention reads); this manager does the paged accounting on top, as vLLM's
`KVCacheManager` does: admission needs the prompt's blocks, decoding takes a new block every
`block_size` tokens, and a full prompt block is indexed by its chain hash and copied into the
block store, so a later prompt with the same prefix copies those blocks back into its slot and
prefills only the rest (vLLM's automatic prefix caching; the copy stands in for paged
attention reading the shared block in place).

Engine thread only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._kv_blocks import BlockPool, PrefixMatch, block_hashes
from ._model import KVCache, TinyTransformer
from ._sequence import Sequence

__all__ = ["Admission", "KvCacheManager"]


@dataclass(frozen=True, slots=True)
class Admission:
    """What admitting a sequence decided: the tokens to prefill and the reused prefix."""

    tokens: list[int]
    match: PrefixMatch
    hashes: list[bytes]


class KvCacheManager:
    def __init__(
        self, model: TinyTransformer, cache: KVCache, *, num_blocks: int, block_size: int,
        prefix_caching: bool,
    ) -> None:
        self.pool = BlockPool(num_blocks, block_size)
        self.store = model.new_block_store(num_blocks, block_size) if prefix_caching else None
        self.cache = cache
        self.block_size = block_size
        self.prefix_queries_tokens = 0
        self.prefix_hits_tokens = 0

    @property
    def usage(self) -> float:
        return self.pool.usage

    def try_admit(self, seq: Sequence) -> Admission | None:
        """Blocks for `seq`'s tokens (reusing cached prefix blocks), or None when they do not
        fit now (the sequence waits)."""
        tokens = seq.cache_tokens()
        pool = self.pool
        hashes = block_hashes(tokens, self.block_size) if self.store is not None else []
        match = pool.match_prefix(hashes, most_tokens=len(tokens) - 1)
        fresh = pool.blocks_for(len(tokens)) - len(match.blocks)
        if not pool.can_allocate(fresh, match.blocks):
            return None
        pool.take(match.blocks)
        seq.blocks = [*match.blocks, *pool.allocate(fresh)]
        if self.store is not None:
            self.prefix_queries_tokens += len(tokens)
            self.prefix_hits_tokens += match.tokens
        return Admission(tokens, match, hashes)

    def load_prefix(self, seq: Sequence, admission: Admission) -> None:
        """Copy the reused blocks into the sequence's slot, before its prefill."""
        if self.store is not None and admission.match.blocks:
            self.store.load(self.cache, seq.slot, admission.match.blocks)

    def register_prefill(self, seq: Sequence, admission: Admission) -> None:
        """Index the sequence's newly computed full blocks for later prompts."""
        if self.store is None:
            return
        for index in range(len(admission.match.blocks), len(admission.hashes)):
            block = seq.blocks[index]
            if self.pool.register(block, admission.hashes[index]):
                self.store.save(self.cache, seq.slot, index, block)

    def grow(self, seq: Sequence) -> bool:
        """Make room for one more token (written at position seq.length); False when no block
        is free (the caller preempts someone)."""
        needed = self.pool.blocks_for(seq.length + 1) - len(seq.blocks)
        if needed <= 0:
            return True
        if self.pool.num_free < needed:
            return False
        seq.blocks.extend(self.pool.allocate(needed))
        return True

    def release(self, seq: Sequence) -> None:
        self.pool.release(seq.blocks)
        seq.blocks = []

    def set_leaking(self, leaking: bool) -> int:
        """The KV-leak fault on or off; turning it off frees the leaked blocks (their count)."""
        if leaking:
            self.pool.leaking = True
            return 0
        return self.pool.stop_leaking()


def prefill_tokens(admission: Admission, device: torch.device) -> torch.Tensor:
    """The tokens left to compute after the reused prefix."""
    return torch.tensor(admission.tokens[admission.match.tokens:], device=device)
