"""Function-preserving conversions of a trained model: widening of the ground decoder (a
ground-only upgrade of a flying codec), widening of the on-board encoder E, and an RGB model
turned into a single-band one.

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

:func:`widen_onboard_state` does the same for E's internal width (``onboard_channels``, N of the
paper's E; ours: a narrow model's E widened for a new campaign). Only E changes: y keeps its M
channels, and h_a, h_s, z and both entropy models keep theirs (N), which is why E's width is a
model argument of its own (:class:`~cosmic.onboard.codec.OnboardCodec`): widening N itself would
add channels to z, hence symbols to every z string. Layer by layer (E is LCBs, GDNs and CAMs):

* an LCB writes ``cat(primary, cheap(primary))``, so a widened one's old channels sit at
  ``[0, n/2)`` and ``[k/2, k/2 + n/2)`` of its k outputs, not in a block; the map of where each
  old channel sits is carried from layer to layer;
* depthwise convs (LCB's 5x5 and cheap 3x3, CAM's 1-D pair) are per channel: the old filters move
  with their channel, new channels keep their random filters;
* the 1x1 convs (LCB's pointwise) give old outputs their old weights and zero weights from the
  new inputs; new outputs keep their random weights from every input, so the new channels carry
  a non-zero signal from the start and the zero weights out of them get a gradient at the first
  step (a channel with zero fan-in *and* zero fan-out would never learn);
* GDN: the old block of gamma in place and zero gamma from new channels into old ones (the
  reparametrised zero, exactly 0 in the forward pass), so a new channel never enters an old
  channel's norm; new channels keep the default beta 1 and gamma 0.1 on the diagonal;
* CAM multiplies its LCB branch by an attention map channel by channel (its pooling is spatial),
  so it needs nothing beyond its convs'. E has no batch or group norm and no reduction over
  channels other than these convs; the colour shortcut and the gains act on y (M), unchanged.

The widened E computes the narrow one's y in exact arithmetic. In float32 a 1x1 conv over more
input channels may sum the same products in another order, so y can differ by a few ulps (as it
does between PyTorch's 1 and 2 threads, or PyTorch and ONNX Runtime; see
:mod:`cosmic.onboard.export`), and a bitstream then differs where a value sits that close to a
rounding boundary. Measured on cosmic-small-vr widened to 192 and 256 channels, 2 of 504 tile
encodes differed (42 UC Merced tiles, 3 qualities, PyTorch and ONNX Runtime; one tile at quality 6
with E 256, in both; ``benchmarks/onboard_width_bitstreams.py``). No channel layout avoids this:
the order of a kernel's reduction is the kernel's.

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

from cosmic.onboard.layers import LCB

__all__ = ["widen_ground_state", "widen_onboard_state", "single_band_state"]


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


def widen_onboard_state(model: nn.Module, state: dict, old_n: int, new_n: int,
                        prefix: str = "onboard.g_a") -> dict:
    """``state`` (a checkpoint whose E has ``old_n`` channels) with E's tensors (under ``prefix``,
    ``"g_a"`` for an on-board codec alone) mapped onto ``model``'s E of ``new_n`` channels, as the
    module docstring says; other tensors are returned unchanged."""
    if new_n < old_n:
        raise ValueError(f"cannot narrow the on-board encoder from {old_n} to {new_n} channels")
    encoder = model.get_submodule(prefix)
    if state[f"{prefix}.0.pointwise.weight"].shape[0] * 2 != old_n:
        raise ValueError(f"the checkpoint's on-board encoder does not have {old_n} channels")
    fresh = {f"{prefix}.{k}": v for k, v in encoder.state_dict().items()}
    widened = dict(state)
    positions = torch.arange(encoder[0].depthwise.in_channels)  # the image's channels
    for i, layer in enumerate(encoder):
        key = f"{prefix}.{i}"
        if isinstance(layer, GDN):
            _widen_gdn(layer, key, state, fresh, widened, positions)
        elif isinstance(layer, LCB):
            positions = _widen_lcb(layer, key, state, fresh, widened, positions)
        else:  # CAM: channel-wise product of its LCB and its depthwise attention pair
            _widen_lcb(layer.local, key + ".local", state, fresh, widened, positions)
            for part in ("horizontal", "vertical"):
                _place_rows(f"{key}.{part}", state, fresh, widened, positions)
    return widened


def _place_rows(key: str, state: dict, fresh: dict, out: dict, rows: torch.Tensor) -> None:
    """A per-channel (depthwise) conv's weight and bias: old rows at ``rows``, new rows fresh."""
    for param in ("weight", "bias"):
        new = fresh[f"{key}.{param}"].clone()
        new[rows] = state[f"{key}.{param}"].to(new)
        out[f"{key}.{param}"] = new


def _widen_lcb(layer: LCB, key: str, state: dict, fresh: dict, out: dict, positions: torch.Tensor) -> torch.Tensor:
    """One LCB whose old inputs sit at ``positions``; returns where its old outputs sit."""
    mult = layer.depthwise.out_channels // layer.depthwise.in_channels
    spread = (positions[:, None] * mult + torch.arange(mult)).flatten()  # the depthwise maps
    _place_rows(key + ".depthwise", state, fresh, out, spread)
    weight = fresh[key + ".pointwise.weight"].clone()
    old = state[key + ".pointwise.weight"].to(weight)
    half_old, half_new = old.shape[0], weight.shape[0]
    weight[:half_old] = 0.0  # nothing from the new inputs into old outputs ...
    weight[:half_old, spread] = old  # ... and the old weights in place
    out[key + ".pointwise.weight"] = weight
    _place_rows(key + ".cheap", state, fresh, out, torch.arange(half_old))
    bias = fresh[key + ".pointwise.bias"].clone()
    bias[:half_old] = state[key + ".pointwise.bias"].to(bias)
    out[key + ".pointwise.bias"] = bias
    return torch.cat([torch.arange(half_old), half_new + torch.arange(half_old)])


def _widen_gdn(layer: GDN, key: str, state: dict, fresh: dict, out: dict, positions: torch.Tensor) -> None:
    """A GDN over channels whose old ones sit at ``positions`` (gamma's rows are its outputs)."""
    beta, gamma = fresh[key + ".beta"].clone(), fresh[key + ".gamma"].clone()
    beta[positions] = state[key + ".beta"].to(beta)
    gamma[positions] = layer.gamma_reparam.init(torch.zeros_like(gamma[positions]))
    gamma[positions[:, None], positions[None, :]] = state[key + ".gamma"].to(gamma)
    out[key + ".beta"], out[key + ".gamma"] = beta, gamma


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
