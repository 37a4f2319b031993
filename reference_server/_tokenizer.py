"""A byte-level tokenizer: 256 byte tokens plus BOS and EOS.

Every string encodes (UTF-8 bytes, one token each), so no prompt is ever out of vocabulary.
A model sampling raw bytes can produce invalid UTF-8 or stop mid-character: decoding replaces
invalid sequences with U+FFFD, and `StreamDecoder` holds back the bytes of a character not yet
complete, so a stream never emits half a multi-byte character.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Sequence

BYTE_TOKENS = 256
BOS_ID = 256
EOS_ID = 257
VOCAB_SIZE = 258


class ByteTokenizer:
    """Text <-> token ids. Ids 0..255 are bytes; `bos_id` and `eos_id` are the two specials."""

    bos_id = BOS_ID
    eos_id = EOS_ID
    vocab_size = VOCAB_SIZE

    def encode(self, text: str, *, add_bos: bool = True) -> list[int]:
        ids = list(text.encode("utf-8"))
        return [BOS_ID, *ids] if add_bos else ids

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; special tokens are dropped, invalid UTF-8 becomes U+FFFD."""
        return bytes(i for i in ids if 0 <= i < BYTE_TOKENS).decode("utf-8", errors="replace")

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder()


class StreamDecoder:
    """Incremental decoding: `feed` returns only complete characters; `flush` ends the stream
    (a trailing incomplete character becomes U+FFFD)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, ids: int | Sequence[int]) -> str:
        if isinstance(ids, int):
            ids = (ids,)
        return self._decoder.decode(bytes(i for i in ids if 0 <= i < BYTE_TOKENS))

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)
