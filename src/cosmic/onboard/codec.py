"""What flies: the lightweight encoder E, the mean-scale hyperprior and the entropy coder.

Paper §4.2 and DESIGN §2. Layout of E (Ballé 2018 with every dense 5x5 conv replaced by an LCB)::

    x ─ LCB(3→N, s2, x8) ─ GDN ─ LCB(N→N, s2) ─ GDN ─ CAM ─ LCB(N→N, s2) ─ GDN ─ CAM ─ LCB(N→M, s2) ─ y

Where the CAMs sit (our choice; the paper leaves it open): after the 2nd and 3rd GDN, i.e. at H/4
and H/8. At H/2 a CAM would cost four times what it costs at H/4 while the 1-D attention there
spans only a few dozen pixels; at H/4 and H/8 the 7-tap 1-D convs on a pooled map reach across
56 and 112 input pixels, which is where non-local context helps the latent most. Before the last
LCB the map is already as small as y, and y itself must stay linear for the entropy model.

Entropy model: Minnen 2018's mean-scale hyperprior *without* the autoregressive context model
(sequential decoding is too slow for the satellite): ``z = h_a(y)`` coded with CompressAI's
``EntropyBottleneck``; ``(scales, means) = h_s(z_hat)``; ``y`` coded with ``GaussianConditional``
and CompressAI's rANS coder.

Determinism. Encoder and decoder must compute bit-identical ``scales`` (a one-ulp difference can
pick another CDF table and wreck the rANS decode, CompressAI issues #279, #309). The coding paths
(:meth:`entropy_parameters`) therefore run ``h_s`` in float64, where the error of a different
reduction order (thread count, GPU vs CPU) is ~1e-16 relative, far below the gap between two
scale-table entries (~13% apart).

This module imports nothing from :mod:`cosmic.ground`.
"""

from __future__ import annotations

import copy

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN
from compressai.models import CompressionModel
from compressai.models.base import get_scale_table
from compressai.models.utils import conv, deconv
from torch import nn

from cosmic.onboard.entropy import guard_entropy_coders
from cosmic.onboard.layers import CAM, LCB
from cosmic.onboard.rate import COLOUR_SPACES, GainUnits, rgb_to_ycbcr
from cosmic.utils.pretrained import ConfigMixin, weights_digest

__all__ = ["LightweightEncoder", "ColourShortcut", "OnboardCodec", "ste_round"]

def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through gradient (Minnen & Singh 2020)."""
    return (torch.round(x) - x).detach() + x


class LightweightEncoder(nn.Sequential):
    """The on-board analysis transform E (paper §4.2, Fig. 2 (a)); see the module docstring."""

    def __init__(self, N: int, M: int, cam_positions: tuple[int, ...] = (2, 3), cam_kernel: int = 7,
                 stem_multiplier: int = 8):
        layers: list[nn.Module] = []
        chans = [3, N, N, N, M]
        for stage in range(4):
            mult = stem_multiplier if stage == 0 else 1
            layers.append(LCB(chans[stage], chans[stage + 1], kernel_size=5, stride=2, multiplier=mult))
            if stage < 3:
                layers.append(GDN(chans[stage + 1]))
                if stage + 1 in cam_positions:
                    layers.append(CAM(chans[stage + 1], kernel_size=cam_kernel))
        super().__init__(*layers)


class ColourShortcut(nn.Module):
    """Our addition to E (not in the paper): ``y += W · avgpool16(x)``, a 1x1 conv from each
    16x16 block's mean colour straight into y, zero-initialised.

    Measured on the first models: E's depthwise LCB stack nearly discards colour (swapping R and G
    changed y by 0.6 % of its norm; in bmshj2018-hyperprior's dense g_a by 17 %), so y_hat carried
    almost no chroma, the decoder took colour from Ẽ's z0, and the diffusion model, which must
    generate z0 from y_hat, invented it. This path costs 3·M MACs per latent pixel (0.02 % of E)."""

    #: output gain: Adam moves a weight by about lr per step whatever its gradient's scale, and y
    #: lives in units of the quantisation step; the gain lets this path catch up in a fine-tune
    gain = 256.0

    def __init__(self, M: int, block: int = 16):
        super().__init__()
        self.block = block
        self.proj = nn.Conv2d(3, M, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * self.proj(torch.nn.functional.avg_pool2d(x, self.block, ceil_mode=True))


class OnboardCodec(CompressionModel, ConfigMixin):
    """E + h_a + h_s + entropy coding: everything the satellite runs (DESIGN §1).

    ``forward`` is the training path (noisy likelihoods, straight-through rounded ``y_hat``);
    ``compress`` / ``decompress`` are the real coding paths and produce / consume rANS strings.
    """

    def __init__(self, N: int = 192, M: int = 320, cam_positions=(2, 3), cam_kernel: int = 7,
                 stem_multiplier: int = 8, colour_shortcut: bool = False, rate_levels: int = 0,
                 gain_span: float = 0.0, colour_space: str = "rgb"):
        super().__init__()
        if colour_space not in COLOUR_SPACES:
            raise ValueError(f"colour_space '{colour_space}': choose one of {', '.join(COLOUR_SPACES)}")
        self.register_config(N=N, M=M, cam_positions=list(cam_positions), cam_kernel=cam_kernel,
                             stem_multiplier=stem_multiplier, colour_shortcut=colour_shortcut,
                             rate_levels=rate_levels, gain_span=gain_span, colour_space=colour_space)
        self.N, self.M = N, M
        self.colour_space = colour_space
        self.g_a = LightweightEncoder(N, M, tuple(cam_positions), cam_kernel, stem_multiplier)
        self.colour = ColourShortcut(M) if colour_shortcut else None
        #: rate_levels 0: a fixed-rate model (one λ); else a variable-rate one (see GainUnits)
        self.gain = GainUnits(rate_levels, M, gain_span) if rate_levels else None
        self.h_a = nn.Sequential(
            conv(M, N, stride=1, kernel_size=3),
            nn.ReLU(inplace=True),
            conv(N, N),
            nn.ReLU(inplace=True),
            conv(N, N),
        )
        self.h_s = nn.Sequential(
            deconv(N, N),
            nn.ReLU(inplace=True),
            deconv(N, N),
            nn.ReLU(inplace=True),
            conv(N, 2 * M, stride=1, kernel_size=3),
        )
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self._h_s64: nn.Module | None = None

    # The hyper-synthesis in float64 for the coding paths (see module docstring).
    def _double_h_s(self) -> nn.Module:
        if self._h_s64 is None:
            h = copy.deepcopy(self.h_s).to(torch.float64).eval()
            for p in h.parameters():
                p.requires_grad_(False)
            object.__setattr__(self, "_h_s64", h)
        return self._h_s64

    def _invalidate(self) -> None:
        object.__setattr__(self, "_h_s64", None)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        self._invalidate()
        return super().load_state_dict(state_dict, strict=strict, **kwargs)

    def train(self, mode: bool = True):
        if mode:
            self._invalidate()
        return super().train(mode)

    def digest(self) -> str:
        """SHA-256 of the on-board weights and entropy tables: what a bitstream's syntax depends on."""
        return weights_digest(self.state_dict())

    def bitstream_id(self) -> str:
        """The first 16 bytes (32 hex digits) of :meth:`digest`, as written in every bitstream."""
        return self.digest()[:32]

    @property
    def downsampling_factor(self) -> int:
        return 64  # y at H/16, z at H/64

    @property
    def quality_range(self) -> tuple[float, float] | None:
        """(lowest, highest) quality of a variable-rate model; None for a fixed-rate one."""
        return None if self.gain is None else (1.0, float(self.gain.levels))

    def quality_tensor(self, quality, batch: int) -> torch.Tensor | None:
        """``quality`` (a number, or a (B,) tensor in training) as a (B,) tensor; ValueError when
        a variable-rate model gets none or one out of its range, or a fixed-rate model gets one."""
        if self.gain is None:
            if quality is not None:
                raise ValueError("this model codes one rate; it takes no quality value")
            return None
        if quality is None:
            raise ValueError(f"this variable-rate model needs a quality in 1..{self.gain.levels}")
        if isinstance(quality, torch.Tensor):
            return quality.reshape(-1).expand(batch) if quality.numel() == 1 else quality
        return torch.full((batch,), self.gain.check_quality(quality))

    def analysis(self, x: torch.Tensor, quality=None) -> torch.Tensor:
        """y = E(x) (+ the colour shortcut when the model has one), in the coding colour space,
        times the gains of ``quality`` for a variable-rate model."""
        q = self.quality_tensor(quality, x.shape[0])
        if self.colour_space == "ycbcr":
            x = rgb_to_ycbcr(x)
        y = self.g_a(x)
        if self.colour is not None:
            y = y + self.colour(x)
        return y if q is None else y * self.gain(q).to(y.dtype)

    # -- training path ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, quality=None) -> dict:
        y = self.analysis(x, quality)
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        scales, means = self.h_s(z_hat).chunk(2, 1)
        _, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        y_hat = ste_round(y - means) + means
        return {"y_hat": y_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    # -- coding paths -------------------------------------------------------------------------
    def entropy_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales, means) of y from z_hat, computed in float64 so both ends agree bit for bit."""
        params = self._double_h_s()(z_hat.to(torch.float64))
        scales, means = params.chunk(2, 1)
        return scales, means

    def update(self, scale_table=None, force: bool = False) -> bool:
        """Rebuild the CDF tables of both entropy models (CompressAI contract)."""
        self._invalidate()
        if scale_table is None:
            scale_table = get_scale_table()
        return super().update(scale_table=scale_table, force=force)

    @torch.no_grad()
    def compress(self, x: torch.Tensor, quality=None) -> dict:
        """Encode a batch of tiles to rANS strings: ``{"strings": [y, z], "shape": z_hw}``.
        ``quality``: the rate of a variable-rate model (the decoder's entropy decode does not need
        it; its inverse gains do, so the container records it)."""
        y = self.analysis(x, quality)
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        scales, means = self.entropy_parameters(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_strings = self.gaussian_conditional.compress(y.to(torch.float64), indexes, means=means)
        return {"strings": [y_strings, z_strings], "shape": tuple(z.shape[-2:])}

    @torch.no_grad()
    def decompress(self, strings, shape) -> dict:
        """Decode rANS strings back to the quantised latent ``y_hat`` (float32)."""
        guard_entropy_coders(self)  # bounds-safe, deterministic rANS decode
        y_strings, z_strings = strings
        z_hat = self.entropy_bottleneck.decompress(z_strings, shape)
        scales, means = self.entropy_parameters(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_hat = self.gaussian_conditional.decompress(y_strings, indexes, means=means)
        return {"y_hat": y_hat.to(torch.float32)}
