"""A bounds-safe, deterministic rANS decode for CompressAI's entropy models.

CompressAI's C++ ``RansDecoder.decode_with_indexes`` trusts its input: it reads 32-bit words
from the string it is given with no bounds check, one per symbol at most on the ordinary path
and more in the bypass (escape) path. A corrupt string, even one with a valid CRC, can make it
read past the end of its buffer, into whatever the heap holds there; the decoded latent (and
the exit status) then changed from run to run.

:class:`CheckedDecoder` wraps the decoder so that a decode is a pure function of its bytes:

1. the string is padded with zero words (enough for one word per symbol plus slack), so the
   decoder reads zeros, not foreign memory, where it runs past the string;
2. symbols beyond :data:`MAX_SYMBOL` (only a corrupt escape code gives those) are refused;
3. the decoded symbols are encoded again and must give back the string exactly. rANS decoding
   mirrors the encoder word for word, so a re-encode that matches proves the decoder consumed
   exactly the string's words (none of the padding, nothing beyond); anything else -- a string
   that runs short, trailing bytes, corrupt words that decode to a different message -- raises
   ``ValueError``, the same way every time.

The check costs one extra encode per string (about as long as the decode). Encoding is not
affected. :class:`CheckedStream` does the same for a string decoded in parts (a checkerboard
context's anchors, then its non-anchors, :mod:`cosmic.onboard.context`): padded the same way, its
parts re-encoded by :func:`encode_stream` at the end must give back the string. :func:`guard_entropy_coders` installs the wrapper on a model's entropy models; it is
idempotent and is called at the top of every ``decompress``.

This module imports nothing from :mod:`cosmic.ground`.
"""

from __future__ import annotations

import numpy as np
from compressai.ans import BufferedRansEncoder, RansDecoder
from torch import nn

__all__ = ["CheckedDecoder", "CheckedStream", "encode_stream", "coder_tables", "guard_entropy_coders",
           "PAD_SLACK_WORDS", "MAX_SYMBOL"]

#: zero words appended beyond one per symbol (init reads 2; the bypass path reads a few more)
PAD_SLACK_WORDS = 64
#: the largest symbol magnitude re-encoded; corrupt bypass codes decode to values up to 2^31,
#: on which CompressAI's encoder loops forever (a negative raw value never shifts down to 0)
MAX_SYMBOL = 1 << 24


class CheckedDecoder:
    """Proxy to CompressAI's ``_EntropyCoder`` whose decode is padded and verified (see above)."""

    def __init__(self, coder):
        self.coder = coder
        self.name = getattr(coder, "name", "ans")

    def encode_with_indexes(self, *args, **kwargs):
        """Encoding is unchanged: CompressAI's encoder."""
        return self.coder.encode_with_indexes(*args, **kwargs)

    def decode_with_indexes(self, string, indexes, cdfs, cdf_lengths, offsets):
        """Decode ``string``; ``ValueError`` unless it is exactly the encoding of the result."""
        if not isinstance(string, (bytes, bytearray)):
            raise ValueError("rANS string must be bytes")
        string = bytes(string)
        if len(string) % 4:
            raise ValueError("rANS string length is not a multiple of 4 bytes")
        pad = b"\0" * (4 * (len(indexes) + PAD_SLACK_WORDS))
        values = self.coder.decode_with_indexes(string + pad, indexes, cdfs, cdf_lengths, offsets)
        if values and int(np.abs(np.asarray(values, dtype=np.int64)).max()) > MAX_SYMBOL:
            raise ValueError("rANS string decodes to out-of-range symbols (corrupt)")
        if self.coder.encode_with_indexes(values, indexes, cdfs, cdf_lengths, offsets) != string:
            raise ValueError("rANS string does not decode (corrupt symbols or wrong length)")
        return values


def guard_entropy_coders(model: nn.Module) -> None:
    """Wrap the entropy coder of every CompressAI entropy model inside ``model`` (idempotent)."""
    for module in model.modules():
        coder = getattr(module, "entropy_coder", None)
        if coder is not None and not isinstance(coder, CheckedDecoder):
            module.entropy_coder = CheckedDecoder(coder)


def coder_tables(model) -> tuple[list, list, list]:
    """(quantised CDFs, CDF lengths, offsets) of a CompressAI entropy model, as its coder takes them."""
    return (model._quantized_cdf.tolist(), model._cdf_length.reshape(-1).int().tolist(),
            model._offset.reshape(-1).int().tolist())


def encode_stream(parts, tables) -> bytes:
    """One rANS string of ``parts`` ((symbols, indexes) lists), decoded in the same order."""
    encoder = BufferedRansEncoder()
    for symbols, indexes in parts:
        encoder.encode_with_indexes(symbols, indexes, *tables)
    return encoder.flush()


class CheckedStream:
    """A rANS string decoded part by part (:func:`encode_stream`'s parts, in order), padded like
    :class:`CheckedDecoder`; :meth:`verify` re-encodes the parts and must give back the string."""

    def __init__(self, string, symbols: int, tables):
        if not isinstance(string, (bytes, bytearray)):
            raise ValueError("rANS string must be bytes")
        self.string, self.tables, self.parts = bytes(string), tables, []
        if len(self.string) % 4:
            raise ValueError("rANS string length is not a multiple of 4 bytes")
        self.decoder = RansDecoder()
        self.decoder.set_stream(self.string + b"\0" * (4 * (symbols + PAD_SLACK_WORDS)))

    def decode(self, indexes: list[int]) -> list[int]:
        """The next part's symbols."""
        values = self.decoder.decode_stream(indexes, *self.tables)
        if values and int(np.abs(np.asarray(values, dtype=np.int64)).max()) > MAX_SYMBOL:
            raise ValueError("rANS string decodes to out-of-range symbols (corrupt)")
        self.parts.append((values, indexes))
        return values

    def verify(self) -> None:
        """ValueError unless the decoded parts are exactly what the string encodes."""
        if encode_stream(self.parts, self.tables) != self.string:
            raise ValueError("rANS string does not decode (corrupt symbols or wrong length)")
