"""What every complete codec shares: an on-board half (``.onboard``, a
:class:`~cosmic.onboard.coding.HyperpriorCodec`) and a ground half (``.ground``), in CompressAI's
model contract. The rate side (``aux_loss``, ``update``, ``compress``) is the on-board codec's;
a subclass adds ``forward`` and ``decompress``.
"""

from __future__ import annotations

import torch
from compressai.models import CompressionModel

from cosmic.utils.pretrained import ConfigMixin

__all__ = ["TwoSidedCodec"]


class TwoSidedCodec(CompressionModel, ConfigMixin):
    """Base of :class:`~cosmic.models.cosmic.Cosmic` and the learned baselines."""

    #: tiles must be multiples of 64 (y at H/16, z at H/64)
    tile_multiple = 64

    def aux_loss(self) -> torch.Tensor:
        return self.onboard.aux_loss()

    def update(self, scale_table=None, force: bool = False) -> bool:
        """Rebuild the on-board entropy models' CDF tables (CompressAI contract)."""
        return self.onboard.update(scale_table=scale_table, force=force)

    def compress(self, x: torch.Tensor, quality=None) -> dict:
        """Tiles to rANS strings: the on-board codec's ``compress``."""
        return self.onboard.compress(x, quality)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        # CompressionModel resizes the entropy tables' buffers of the nested entropy models.
        self.onboard._invalidate()
        return super().load_state_dict(state_dict, strict=strict)
