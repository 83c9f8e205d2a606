"""The hyperprior coding base shared by every on-board codec (COSMIC's and the learned baselines').

:class:`HyperpriorCodec` implements CompressAI's coding contract once: ``update`` (CDF tables),
``compress`` (tiles -> y / z rANS strings) and ``decompress`` (strings -> ``y_hat``), the float64
hyper-synthesis that makes both ends pick the same CDF tables, the bitstream identity and the
quality interface. A subclass supplies the transforms ``g_a`` / ``h_a`` / ``h_s`` and the entropy
models, and overrides :meth:`analysis`, :meth:`hyper_input` and :meth:`split_params` where its
architecture differs.

Determinism. Encoder and decoder must compute bit-identical ``scales`` (a one-ulp difference can
pick another CDF table and wreck the rANS decode, CompressAI issues #279, #309). The coding paths
(:meth:`HyperpriorCodec.entropy_parameters`) therefore run ``h_s`` in float64, where the error of a
different reduction order (thread count, GPU vs CPU) is ~1e-16 relative, far below the gap
between two scale-table entries (~13% apart).

This module imports nothing from :mod:`cosmic.ground`.
"""

from __future__ import annotations

import copy

import torch
from compressai.models import CompressionModel
from compressai.models.base import get_scale_table
from torch import nn

from cosmic.errors import EntropyDecodeError
from cosmic.onboard.entropy import CheckedStream, coder_tables, encode_stream, guard_entropy_coders
from cosmic.utils.device import exact
from cosmic.utils.pretrained import ConfigMixin, weights_digest

__all__ = ["HyperpriorCodec"]


class HyperpriorCodec(CompressionModel, ConfigMixin):
    """E + h_a + h_s + entropy coding: the coding half of a (mean-)scale hyperprior codec.

    ``compress`` / ``decompress`` are the real coding paths and produce / consume rANS strings;
    the subclass's ``forward`` is the training path.
    """

    _h_s64: nn.Module | None = None
    _context64: nn.Module | None = None
    #: the ``_class_name`` of the complete model this codec is the on-board half of (to load the
    #: on-board part of a model saved before components, see :func:`cosmic.zoo.load_onboard`)
    part_of: str | None = None

    # -- the transforms a subclass may override ------------------------------------------------
    def analysis(self, x: torch.Tensor, quality=None) -> torch.Tensor:
        """y = g_a(x) (checking that a fixed-rate codec gets no quality)."""
        self.quality_tensor(quality, x.shape[0])
        return self.g_a(x)

    def hyper_input(self, y: torch.Tensor) -> torch.Tensor:
        """What h_a sees: y itself (a scale-only hyperprior overrides this with |y|)."""
        return y

    def split_params(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(scales, means) from h_s's output: a mean-scale hyperprior's two halves."""
        scales, means = params.chunk(2, 1)
        return scales, means

    # -- bookkeeping ---------------------------------------------------------------------------
    def _double_h_s(self) -> nn.Module:
        """A frozen float64 copy of h_s for the coding paths, made once per set of weights."""
        return self._double("_h_s64", self.h_s)

    def _double_context(self) -> nn.Module:
        """A frozen float64 copy of the context model for the coding paths (as :meth:`_double_h_s`)."""
        return self._double("_context64", self.context)

    def _double(self, cache: str, module: nn.Module) -> nn.Module:
        """A frozen float64 copy of ``module``, kept in the attribute ``cache`` until the weights change."""
        if getattr(self, cache) is None:
            double = copy.deepcopy(module).to(torch.float64).eval()
            for p in double.parameters():
                p.requires_grad_(False)
            object.__setattr__(self, cache, double)
        return getattr(self, cache)

    def _invalidate(self) -> None:
        object.__setattr__(self, "_h_s64", None)
        object.__setattr__(self, "_context64", None)

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

    def without_context(self) -> "HyperpriorCodec":
        """This codec without its context model, sharing every other weight: the codec its
        weights were before a context was trained onto them (issue 30: a context trained on a
        frozen model changes nothing else), so files written then still decode. Its
        :meth:`bitstream_id` is that codec's. Returns ``self`` for a codec without a context."""
        if self.context is None:
            return self
        view = copy.copy(self)
        view._modules = {**self._modules, "context_model": None}  # the original keeps its own
        view._invalidate()
        return view

    @property
    def downsampling_factor(self) -> int:
        return 64  # y at H/16, z at H/64

    # -- quality -------------------------------------------------------------------------------
    @property
    def gain_units(self) -> nn.Module | None:
        """A variable-rate codec's gain vectors (:class:`~cosmic.onboard.rate.GainUnits`, the
        subclass's ``gain`` module); None for a fixed-rate codec."""
        return getattr(self, "gain", None)

    @property
    def quality_range(self) -> tuple[float, float] | None:
        """(lowest, highest) quality of a variable-rate model; None for a fixed-rate one."""
        gain = self.gain_units
        return None if gain is None else (1.0, float(gain.levels))

    def quality_tensor(self, quality, batch: int) -> torch.Tensor | None:
        """``quality`` (a number, or a (B,) tensor in training) as a (B,) tensor; ValueError when
        a variable-rate model gets none or one out of its range, or a fixed-rate model gets one."""
        gain = self.gain_units
        if gain is None:
            if quality is not None:
                raise ValueError("this model codes one rate; it takes no quality value")
            return None
        if quality is None:
            raise ValueError(f"this variable-rate model needs a quality in 1..{gain.levels}")
        if isinstance(quality, torch.Tensor):
            return quality.reshape(-1).expand(batch) if quality.numel() == 1 else quality
        return torch.full((batch,), gain.check_quality(quality), device=self.entropy_bottleneck.quantiles.device)

    @property
    def context(self) -> nn.Module | None:
        """The context model (:mod:`cosmic.onboard.context`, the subclass's ``context_model``) of
        a codec that has one; None: y is coded with the hyperprior's parameters alone."""
        return getattr(self, "context_model", None)

    # -- coding paths --------------------------------------------------------------------------
    def entropy_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(scales, means) of y from z_hat, computed in float64 so both ends agree bit for bit."""
        return self.split_params(self._double_h_s()(z_hat.to(torch.float64)))

    def update(self, scale_table=None, force: bool = False) -> bool:
        """Rebuild the CDF tables of both entropy models (CompressAI contract); ``scale_table``
        defaults to CompressAI's."""
        self._invalidate()
        if scale_table is None:
            scale_table = get_scale_table()
        return super().update(scale_table=scale_table, force=force)

    @torch.no_grad()
    @exact()
    def compress(self, x: torch.Tensor, quality=None) -> dict:
        """Encode a batch of tiles to rANS strings: ``{"strings": [y, z], "shape": z_hw}``.
        ``quality``: the rate of a variable-rate model (the entropy decode does not need it; the
        ground's inverse gains do, so the container records it). Runs on the codec's device with
        autocast off (:func:`~cosmic.utils.device.exact`): the bits never depend on a precision
        asked for around it."""
        x = x.to(self.entropy_bottleneck.quantiles.device)
        y = self.analysis(x, quality)
        return self.code_latents(y, self.h_a(self.hyper_input(y)))

    @torch.no_grad()
    def code_latents(self, y: torch.Tensor, z: torch.Tensor) -> dict:
        """The entropy-coding half of :meth:`compress` for given float32 ``y`` and ``z`` (from
        PyTorch, or from the exported graph in ONNX Runtime: :mod:`cosmic.onboard.export`)."""
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        scales, means = self.entropy_parameters(z_hat)
        y_strings = self._code_y(y.to(torch.float64), scales, means)
        return {"strings": [y_strings, z_strings], "shape": tuple(z.shape[-2:])}

    def _code_y(self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> list[bytes]:
        """The y string of each tile: coded with the hyperprior's parameters, or with a context
        model (:mod:`cosmic.onboard.context`) one string of its parts in order, each part with
        the parameters the parts before it give (both ends compute them in float64 from the same
        values)."""
        if self.context is None:
            indexes = self.gaussian_conditional.build_indexes(scales)
            return self.gaussian_conditional.compress(y, indexes, means=means)
        context, y_hat = self._double_context(), torch.zeros_like(y)
        parts: list[list] = [[] for _ in range(y.shape[0])]
        for k, mask in enumerate(context.coding_masks(y.shape[1:], y.device)):
            s, m = context.part_parameters(k, scales, means, y_hat)
            for i, tile_parts in enumerate(parts):
                tile_parts.append(self._symbols(y[i], s[i], m[i], mask))
            y_hat = torch.where(mask, torch.round(y - m) + m, y_hat)
        tables = coder_tables(self.gaussian_conditional)
        return [encode_stream(tile_parts, tables) for tile_parts in parts]

    def _symbols(self, y, scales, means, where) -> tuple[list[int], list[int]]:
        """(symbols, CDF indexes) of one tile's (C, H, W) y at the elements ``where``."""
        symbols = torch.round(y[..., where] - means[..., where]).int().reshape(-1).tolist()
        indexes = self.gaussian_conditional.build_indexes(scales[..., where]).int().reshape(-1).tolist()
        return symbols, indexes

    @torch.no_grad()
    @exact()
    def decompress(self, strings, shape) -> dict:
        """Decode rANS strings back to the quantised latent ``y_hat`` (float32). The rANS
        decoder's own failures are raised as :class:`~cosmic.errors.EntropyDecodeError`; the
        decoders are bounds-checked (:func:`~cosmic.onboard.entropy.guard_entropy_coders`), so a
        corrupt string gives the same answer every time. Autocast is off here, as in ``compress``."""
        guard_entropy_coders(self)
        y_strings, z_strings = strings
        try:
            z_hat = self.entropy_bottleneck.decompress(z_strings, shape)
        except (ValueError, RuntimeError, IndexError) as exc:
            raise EntropyDecodeError(f"z string undecodable ({type(exc).__name__})") from None
        scales, means = self.entropy_parameters(z_hat)
        try:
            y_hat = self._decode_y(y_strings, scales, means)
        except (ValueError, RuntimeError, IndexError) as exc:
            raise EntropyDecodeError(f"y string undecodable ({type(exc).__name__})") from None
        return {"y_hat": y_hat.to(torch.float32)}

    def _decode_y(self, y_strings, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """y_hat (float64) from the strings :meth:`_code_y` wrote."""
        if self.context is None:
            indexes = self.gaussian_conditional.build_indexes(scales)
            return self.gaussian_conditional.decompress(y_strings, indexes, means=means)
        if len(y_strings) != scales.shape[0]:
            raise ValueError("one y string per tile")
        tables, context = coder_tables(self.gaussian_conditional), self._double_context()
        streams = [CheckedStream(s, scales[0].numel(), tables) for s in y_strings]
        y_hat = torch.zeros_like(means)
        for k, mask in enumerate(context.coding_masks(scales.shape[1:], scales.device)):
            s, m = context.part_parameters(k, scales, means, y_hat)
            y_hat[:, mask] = self._decode_part(streams, s, m, mask)
        for stream in streams:
            stream.verify()
        return y_hat

    def _decode_part(self, streams, scales, means, where) -> torch.Tensor:
        """y_hat at the elements ``where`` (a (C, H, W) mask) of every tile, (B, n), decoded from ``streams``."""
        scales, means = scales[:, where], means[:, where]
        indexes = self.gaussian_conditional.build_indexes(scales).int()
        values = [torch.tensor(s.decode(indexes[i].reshape(-1).tolist()), dtype=means.dtype).reshape(means.shape[1:])
                  for i, s in enumerate(streams)]
        return torch.stack(values) + means
