"""The whole COSMIC codec for stage-1 training and for decoding (paper Fig. 2 (a), Eq. 1-2).

``Cosmic`` = :class:`~cosmic.onboard.codec.OnboardCodec` (what flies) +
:class:`~cosmic.ground.decoder.GroundDecoder` (what the ground runs). It follows CompressAI's
model contract: ``forward`` (training), ``compress`` / ``decompress`` (real rANS strings),
``update`` (entropy tables), ``aux_loss``.
"""

from __future__ import annotations

import copy

import torch

from cosmic.ground.decoder import GroundDecoder
from cosmic.models.base import TwoSidedCodec
from cosmic.onboard.codec import OnboardCodec
from cosmic.utils.device import exact_synthesis
from cosmic.utils.pretrained import register_component, register_to_config

__all__ = ["Cosmic"]


@register_component
class Cosmic(TwoSidedCodec):
    """Stage-1 COSMIC: lightweight encoder + hyperprior on board, transconv/Ẽ/D on the ground.

    Args:
        N: channels of the on-board encoder and the hyperprior (paper: 192).
        onboard_channels: channels of the on-board encoder E alone when not None (ours: E can be
            widened while the hyperprior, z and the entropy models keep N, see
            :func:`~cosmic.training.widen.widen_onboard_state`).
        M: channels of the latent y (at H/16).
        ground_channels: channels of transconv, Ẽ and D (Table 3: 192).
        latent_channels: channels of the compensation latent z0 at H/4 (Table 3: 4).
        cam_positions: after which GDN stages of E a CAM sits (see :mod:`cosmic.onboard.codec`).
        cam_kernel: length of CAM's 1-D convs.
        stem_multiplier: depthwise filters per RGB channel in E's first LCB (see ``LCB``).
        colour_shortcut: add :class:`~cosmic.onboard.codec.ColourShortcut` to E (ours, not the
            paper's: E alone nearly discards colour).
        rate_levels: 0 for a fixed-rate model; else the number of gain vectors of a variable-rate
            one (Cui et al. 2021; :class:`~cosmic.onboard.rate.GainUnits`), quality 1..levels.
        gain_span: natural log of the ratio of the finest to the coarsest initial gain.
        colour_space: "rgb" (the paper) or "ycbcr" (E codes JPEG's YCbCr; D's output is
            turned back to RGB).
        in_channels: 3 (RGB) or 1 (a single-band model: E reads one band, D writes one; "rgb"
            only). Its decompress gives the band as R = G = B, the pipelines' picture format.
        context: None (the paper's hyperprior alone) or "checkerboard": a spatial context for y's
            entropy model (:mod:`cosmic.onboard.context`, He et al. 2021; ours, not the paper's).
        name: a model identifier written into every bitstream.
        onboard, ground: the components already built (loading, see
            :meth:`~cosmic.models.base.TwoSidedCodec.from_pretrained`); by default built here
            from the arguments above.
    """

    @register_to_config
    def __init__(
        self,
        N: int = 192,
        M: int = 320,
        ground_channels: int = 192,
        latent_channels: int = 4,
        cam_positions=(2, 3),
        cam_kernel: int = 7,
        stem_multiplier: int = 8,
        name: str = "cosmic",
        colour_shortcut: bool = False,
        rate_levels: int = 0,
        gain_span: float = 0.0,
        colour_space: str = "rgb",
        in_channels: int = 3,
        onboard_channels: int | None = None,
        context: str | None = None,
        onboard: OnboardCodec | None = None,
        ground: GroundDecoder | None = None,
    ):
        super().__init__()
        self.name = name
        if onboard is None:
            onboard = OnboardCodec(N, M, cam_positions, cam_kernel, stem_multiplier, colour_shortcut,
                                   rate_levels, gain_span, colour_space, in_channels, onboard_channels, context)
        if ground is None:
            ground = GroundDecoder(ground_channels, M, latent_channels, rate_levels, gain_span, colour_space,
                                   in_channels)
        self.onboard, self.ground = onboard, ground

    def without_context(self) -> "Cosmic":
        """This model without its on-board context model, sharing every weight (the ground's
        too): it decodes the files these weights wrote before the context was trained onto them
        (:meth:`~cosmic.onboard.coding.HyperpriorCodec.without_context`). ``self`` when the model
        has no context."""
        if self.onboard.context is None:
            return self
        view = copy.copy(self)
        view._modules = {**self._modules, "onboard": self.onboard.without_context()}
        return view

    # -- CompressAI contract ------------------------------------------------------------------
    def forward(self, x: torch.Tensor, quality=None) -> dict:
        """Training pass. Returns both reconstructions of Eq. 2:

        ``x_hat`` with z0 ~ q(z0|x) from Ẽ (reparameterised; its mean in eval mode), and
        ``x_hat_est`` with the deterministic estimate ẑ0(y_hat), the "no compensation" path.

        In training mode D runs once per sample, not twice: the first half of the batch is
        decoded with Ẽ's z0 (``x_hat``), the second half with ẑ0 (``x_hat_est``), and ``split``
        says where the halves meet. In eval mode both paths cover the whole batch (``split=None``).
        """
        q = self.onboard.quality_tensor(quality, x.shape[0])
        out = self.onboard(x, q)
        features = self.ground.upsample(out["y_hat"], q)
        mu, logvar = self.ground.encode_z0(x)
        z0_est = self.ground.z0_estimator(features)
        result = {
            "likelihoods": out["likelihoods"], "z0_mu": mu, "z0_logvar": logvar,
            "z0_est": z0_est, "y_hat": out["y_hat"], "split": None, "quality": q,
        }
        if self.training and self.split_decoder and x.shape[0] >= 2:
            h = x.shape[0] // 2
            z0 = mu[:h] + torch.exp(0.5 * logvar[:h]) * torch.randn_like(mu[:h])
            x_all = self.ground.synthesize(features, torch.cat([z0, z0_est[h:]], dim=0))
            result.update(x_hat=x_all[:h], x_hat_est=x_all[h:], split=h)
        else:
            result["x_hat"] = self.ground.synthesize(features, mu)
            result["x_hat_est"] = self.ground.synthesize(features, z0_est)
        return result

    #: decode each training sample once (half the batch per path); False decodes both paths for
    #: the whole batch, as a literal reading of Eq. 2 would (kept for the profiling benchmark)
    split_decoder = True

    @torch.no_grad()
    def decompress(self, strings, shape, z0: torch.Tensor | None = None, quality=None,
                   compensate=None) -> dict:
        """Decode strings to ``x_hat`` in [0, 1] (Eq. 2 with the decoded y_hat).

        ``z0=None`` decodes with the deterministic estimate ẑ0(y_hat) (no compensation, steps 0);
        ``compensate(y, z0_est, quality) -> z0`` (diffusion compensation; ``y`` is the dequantised
        latent, see :meth:`~cosmic.ground.decoder.GroundDecoder.dequantise`; see
        :meth:`~cosmic.ground.diffusion.sampler.DiffusionCompensator.for_tiles`) replaces it by a
        sampled z0. transconv(y_hat) and ẑ0 are computed once and shared by both.
        ``quality``: the bitstream's quality for a variable-rate model.

        The synthesis runs in float64 (:func:`~cosmic.utils.device.exact_synthesis`; float32 only
        under autocast), its result rounded once to float32: a tile's pixels do not depend on the
        thread count or on the other tiles of its batch (docs/DESIGN.md §3, "Determinism")."""
        y_hat = self.onboard.decompress(strings, shape)["y_hat"]
        q = self.onboard.quality_tensor(quality, y_hat.shape[0])
        ground, y_hat_exact = self._exact_ground(y_hat)
        y = ground.dequantise(y_hat_exact, q)
        features = ground.transconv(y)
        if z0 is None:
            z0 = ground.z0_estimator(features)
            if compensate is not None:  # the stage-2 network runs in float32, its own precision
                z0 = compensate(y.float(), z0.float(), q)
        x_hat = ground.synthesize(features, z0.to(features.dtype)).clamp_(0, 1).float()
        if x_hat.shape[1] == 1:  # a single-band model: the band as R = G = B
            x_hat = x_hat.repeat(1, 3, 1, 1)
        return {"x_hat": x_hat, "y_hat": y_hat}

    @torch.no_grad()
    def quantized_reconstruction(self, x: torch.Tensor, quality=None) -> torch.Tensor:
        """The model's own quantised reconstruction without any entropy coding (for tests):
        y_hat = round(y - mu) + mu, decoded with the deterministic ẑ0."""
        on = self.onboard
        q = on.quality_tensor(quality, x.shape[0])
        y = on.analysis(x, q)
        z = on.h_a(y)
        z_hat = on.entropy_bottleneck.quantize(z, "dequantize", on.entropy_bottleneck._get_medians())
        _, means = on.entropy_parameters(z_hat)
        y_hat = (torch.round(y.to(torch.float64) - means) + means).to(torch.float32)
        ground, y_hat = self._exact_ground(y_hat)
        return ground(y_hat, quality=q).clamp_(0, 1).float()

    def _exact_ground(self, y_hat: torch.Tensor) -> tuple[GroundDecoder, torch.Tensor]:
        """The ground decoder a decode synthesises with (:func:`~cosmic.utils.device.exact_synthesis`:
        its float64 copy, or itself under autocast) and ``y_hat`` in that decoder's dtype."""
        ground = exact_synthesis(self.ground, y_hat.device)
        return ground, y_hat.to(next(ground.parameters()).dtype)
