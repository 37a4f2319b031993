"""KV-cache blocks: fixed-size accounting, prefix caching and the KV-leak fault.

The cache is `num_blocks` blocks of `block_size` tokens, as vLLM's paged KV cache. A
sequence holds a list of blocks (its block table); a block is shared by every sequence whose
prompt begins with the same tokens: a *full* block is identified by a chain hash (its parent
block's hash and its own tokens), so equal hashes mean an equal prefix, never just equal
block contents. When the last holder releases a hashed block, the block stays in the cache
(free but reusable) until the allocator needs it: free blocks are reused least recently
released first, and reusing a hashed one evicts its hash (vLLM's `FreeKVCacheBlockQueue`).

Usage is `1 - free / total` where cached-but-unheld blocks count as free, as vLLM reports
`vllm:kv_cache_usage_perc`. With `leaking` set, released blocks are kept aside (the KV-leak
fault): usage climbs until new requests queue; `stop_leaking()` gives them back.

Touched by the engine thread only.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BlockPool", "PrefixMatch", "block_hashes"]


def block_hashes(tokens: Sequence[int], block_size: int) -> list[bytes]:
    """The chain hash of every full block of `tokens` (a trailing partial block has none)."""
    hashes: list[bytes] = []
    parent = b""
    for start in range(0, len(tokens) - block_size + 1, block_size):
        digest = hashlib.blake2b(parent, digest_size=16)
        digest.update(b",".join(str(t).encode() for t in tokens[start:start + block_size]))
        parent = digest.digest()
        hashes.append(parent)
    return hashes


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    """The cached blocks a new prompt can reuse, in order (their tokens need no prefill)."""

    blocks: tuple[int, ...]
    block_size: int

    @property
    def tokens(self) -> int:
        return len(self.blocks) * self.block_size


class BlockPool:
    """`num_blocks` blocks of `block_size` tokens: allocation, sharing, prefix cache, leak."""

    def __init__(self, num_blocks: int, block_size: int) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError(
                f"num_blocks ({num_blocks}) and block_size ({block_size}) must be >= 1")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self._refs = [0] * num_blocks
        self._hash_of: dict[int, bytes] = {}
        self._block_of: dict[bytes, int] = {}
        # free blocks, least recently released first (dict: ordered, O(1) removal)
        self._free: collections.OrderedDict[int, None] = collections.OrderedDict(
            (b, None) for b in range(num_blocks))
        self._leaked: list[int] = []
        self.leaking = False

    # ---- accounting ------------------------------------------------------------------

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def num_leaked(self) -> int:
        return len(self._leaked)

    @property
    def num_cached(self) -> int:
        """Blocks whose contents are indexed for prefix reuse (held or not)."""
        return len(self._block_of)

    @property
    def usage(self) -> float:
        """Share of blocks held by sequences (or leaked): 0..1."""
        return 1.0 - self.num_free / self.num_blocks

    def blocks_for(self, tokens: int) -> int:
        """How many blocks `tokens` tokens take."""
        return -(-tokens // self.block_size)

    # ---- prefix cache ----------------------------------------------------------------

    def match_prefix(self, hashes: Sequence[bytes], *, most_tokens: int) -> PrefixMatch:
        """The longest run of leading cached blocks, at most `most_tokens` tokens (so that at
        least one prompt token is left to compute the next token's logits from)."""
        blocks: list[int] = []
        for digest in hashes[: most_tokens // self.block_size]:
            block = self._block_of.get(digest)
            if block is None:
                break
            blocks.append(block)
        return PrefixMatch(tuple(blocks), self.block_size)

    def register(self, block: int, digest: bytes) -> bool:
        """Index a full, held block's contents under `digest`; False when another block
        already holds that prefix (this one then stays private)."""
        if digest in self._block_of or block in self._hash_of:
            return False
        self._block_of[digest] = block
        self._hash_of[block] = digest
        return True

    # ---- allocation ------------------------------------------------------------------

    def can_allocate(self, new_blocks: int, reused: Sequence[int] = ()) -> bool:
        """Whether `new_blocks` fresh blocks fit once `reused` cached blocks are taken (a
        reused block that is free stops being free)."""
        taken_from_free = sum(1 for b in reused if self._refs[b] == 0)
        return new_blocks <= self.num_free - taken_from_free

    def take(self, reused: Sequence[int]) -> None:
        """Hold the cached blocks of a prefix match."""
        for block in reused:
            if self._refs[block] == 0:
                del self._free[block]
            self._refs[block] += 1

    def allocate(self, count: int) -> list[int]:
        """`count` fresh blocks; ValueError (nothing taken) when fewer are free."""
        if count > self.num_free:
            raise ValueError(f"{count} blocks asked for, {self.num_free} free")
        blocks = []
        for _ in range(count):
            block, _ = self._free.popitem(last=False)
            digest = self._hash_of.pop(block, None)
            if digest is not None:  # reusing a cached block evicts its prefix
                del self._block_of[digest]
            self._refs[block] = 1
            blocks.append(block)
        return blocks

    def release(self, blocks: Sequence[int]) -> None:
        """A sequence lets go of its blocks (last block first, so a prefix's tail is evicted
        before its head); with `leaking`, unheld blocks are kept aside instead of freed."""
        for block in reversed(blocks):
            self._refs[block] -= 1
            if self._refs[block] == 0:
                if self.leaking:  # held by nobody, freed never; its prefix is forgotten
                    self._refs[block] = 1
                    self._leaked.append(block)
                    digest = self._hash_of.pop(block, None)
                    if digest is not None:
                        del self._block_of[digest]
                else:
                    self._free[block] = None

    def stop_leaking(self) -> int:
        """The leak is fixed: leaked blocks are freed. Returns how many."""
        self.leaking = False
        leaked, self._leaked = self._leaked, []
        for block in leaked:
            self._refs[block] = 0
            self._free[block] = None
        return len(leaked)
