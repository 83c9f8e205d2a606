"""Function-preserving conversions of a trained model: widening of the ground decoder (a
ground-only upgrade of a flying codec) and an RGB model turned into a single-band one.

The on-board half of a model that is already flying cannot change, but the ground's synthesis
(transconv, Ẽ, ẑ0, D of Table 3) can grow at any time. :func:`widen_ground_state` maps the weights
of a ground decoder with ``old_n`` channels onto one with ``new_n`` so that the wider decoder
computes exactly the same image at the start (Net2Net's idea, Chen et al., ICLR 2016, but with
zero fan-in from the new channels instead of duplicated units): every old weight keeps its
place, the new output channels keep their random initialisation, and the weights *from* new
channels *into* old ones start at zero (for GDN, the default off-diagonal gamma already is zero).
Training then only has to add what the extra capacity can give.

Layer inputs that are ``concat(features, z0)`` (D's first conv, Eq. 2) keep their trailing
z0 channels after the widened block.

:func:`single_band_state` maps an RGB model's weights onto a single-band model
(``in_channels=1``) so that, on a grey image g, it computes what the RGB model computes on
(g, g, g): every conv that reads the image (the colour shortcut's 1x1 projection, Ẽ's first conv)
gets the sum of its weights over R, G and B; D's last layer gets the mean of its three output
rows (weights and bias), i.e. the mean of the RGB model's three output channels. E's stem needs
nothing: its 24 depthwise filters (8 per RGB channel) all read the one band (see
:mod:`cosmic.onboard.codec`), as they read three copies of it before.
"""

from __future__ import annotations

import torch
from compressai.layers import GDN
from torch import nn

__all__ = ["widen_ground_state", "single_band_state"]


def widen_ground_state(model: nn.Module, state: dict, old_n: int, new_n: int,
                       prefix: str = "ground") -> dict:
    """``state`` (a checkpoint of width ``old_n``) with every ``prefix`` tensor widened to
    ``model``'s shapes (width ``new_n``); other tensors are returned unchanged."""
    if new_n < old_n:
        raise ValueError(f"cannot narrow the ground decoder from {old_n} to {new_n} channels")
    fresh = model.state_dict()
    widened = dict(state)
    for name, module in model.named_modules():
        if not (name == prefix or name.startswith(prefix + ".")):
            continue
        if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, GDN)):
            continue
        for param in ("weight", "bias", "gamma", "beta"):
            key = f"{name}.{param}"
            if key in state and state[key].shape != fresh[key].shape:
                widened[key] = _widen(module, state[key], fresh[key].clone(), old_n, new_n)
    return widened


def _widen(module: nn.Module, old: torch.Tensor, new: torch.Tensor, old_n: int, new_n: int) -> torch.Tensor:
    """One tensor: the old block copied into place, zero fan-in from new channels to old ones."""
    old = old.to(new.dtype)
    if old.dim() == 1:  # bias / beta: new channels keep their initialisation
        new[: old.shape[0]] = old
        return new
    transposed = isinstance(module, nn.ConvTranspose2d)  # its weight is (in, out, k, k)
    view, old_view = (new.transpose(0, 1), old.transpose(0, 1)) if transposed else (new, old)
    n_out, n_in = old_view.shape[:2]
    if not isinstance(module, GDN):
        view[:n_out] = 0.0
    inputs = _input_positions(n_in, view.shape[1], old_n, new_n)
    view[:n_out, inputs] = old_view
    return new


def _input_positions(old_in: int, new_in: int, old_n: int, new_n: int) -> torch.Tensor:
    """Where the old input channels sit in the widened input: the widened block first, then any
    fixed trailing channels (z0 in D's first conv)."""
    if old_in == new_in:
        return torch.arange(old_in)
    trailing = old_in - old_n
    if trailing < 0 or new_in - old_in != new_n - old_n:
        raise ValueError(f"cannot map {old_in} input channels onto {new_in}")
    return torch.cat([torch.arange(old_n), torch.arange(new_n, new_n + trailing)])


def single_band_state(model: nn.Module, state: dict) -> dict:
    """``state`` (an RGB model's checkpoint) for the single-band ``model`` (see the module
    docstring): image-reading convs summed over the colour channels, the last transposed conv
    averaged over them; other tensors are returned unchanged."""
    converted, fresh = dict(state), model.state_dict()
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            continue
        weight, bias = state[f"{name}.weight"], state.get(f"{name}.bias")
        if weight.shape == fresh[f"{name}.weight"].shape:  # E's stem: the same 24 filters
            continue
        transposed = isinstance(module, nn.ConvTranspose2d)
        if weight.shape[1] != 3:
            raise ValueError(f"{name}: expected 3 colour channels to merge, got weight {tuple(weight.shape)}")
        if transposed:  # (in, out, k, k): the mean of the three output channels
            converted[f"{name}.weight"] = weight.mean(1, keepdim=True)
            if bias is not None:
                converted[f"{name}.bias"] = bias.mean(0, keepdim=True)
        else:  # (out, in, k, k): (g, g, g) in gives the sum over the input channels
            converted[f"{name}.weight"] = weight.sum(1, keepdim=True)
    return converted
