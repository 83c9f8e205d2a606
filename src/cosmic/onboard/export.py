"""On-board export: the analysis transforms as an ONNX graph for a satellite's embedded runtime.

What a satellite runs per tile is two parts:

1. the **network** -- E (the LCB / GDN / CAM stack), the colour shortcut, the YCbCr colour
   transform and the gain units of a variable-rate model (:meth:`OnboardCodec.analysis`), then
   the hyper-analysis h_a -- exported here as one ONNX graph ``x[, quality] -> (y, z)``, which an
   embedded runtime (ONNX Runtime, TensorRT, a vendor NPU SDK) executes;
2. the **entropy coder** -- z is quantised and rANS-coded with the factorised prior, h_s (in
   float64) gives the Gaussian scales and means of y, y is rANS-coded -- which stays in the small
   C++ rANS coder of CompressAI (:func:`entropy_code`), as it does in PyTorch.

:class:`OnnxEncoder` is that split on the ground's CPU: ONNX Runtime for part 1, the rANS coder
for part 2. It writes the same bitstream as ``codec.compress`` when both runtimes give y and z
that quantise alike (``benchmarks/onnx_encode.py`` counts the tiles where they do not).

``onnx`` and ``onnxruntime`` are an optional extra (``pip install cosmic[onnx]``). This module
imports nothing from :mod:`cosmic.ground`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cosmic.errors import InputError

__all__ = ["AnalysisGraph", "export_onnx", "entropy_code", "OnnxEncoder", "OPSET"]

OPSET = 17


class AnalysisGraph(nn.Module):
    """``x[, quality] -> (y, z)``: everything before the entropy coder, as one module."""

    def __init__(self, codec: nn.Module):
        super().__init__()
        self.codec = codec
        self.variable_rate = getattr(codec, "quality_range", None) is not None

    def forward(self, x: torch.Tensor, quality: torch.Tensor | None = None):
        codec = self.codec
        if hasattr(codec, "analysis"):
            y = codec.analysis(x, quality)
        else:  # a CompressAI baseline: plain g_a; the scale hyperprior codes |y|
            y = codec.g_a(x)
        hyper_in = y if getattr(codec, "mean_scale", True) else torch.abs(y)
        return y, codec.h_a(hyper_in)


def export_onnx(codec: nn.Module, path: str | os.PathLike, tile: int = 256, opset: int = OPSET) -> Path:
    """Write the analysis graph of ``codec`` to ``path`` (batch dimension dynamic, tile fixed)."""
    if tile <= 0 or tile % codec.downsampling_factor:
        raise InputError(f"--tile {tile}: must be a positive multiple of {codec.downsampling_factor}")
    path = Path(path)
    graph = AnalysisGraph(codec.eval()).eval()
    x = torch.rand(2, 3, tile, tile)  # batch 2: quality is traced as one value per tile
    args, names = (x,), ["x"]
    if graph.variable_rate:
        args, names = (x, torch.ones(2)), ["x", "quality"]
    axes = {n: {0: "batch"} for n in names + ["y", "z"]}
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation / tracer notes
            torch.onnx.export(graph, args, str(tmp), input_names=names, output_names=["y", "z"],
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@torch.no_grad()
def entropy_code(codec: nn.Module, y: torch.Tensor, z: torch.Tensor) -> dict:
    """The entropy-coding half of ``codec.compress`` for given y and z (float32 tensors)."""
    bottleneck, conditional = codec.entropy_bottleneck, codec.gaussian_conditional
    z_strings = bottleneck.compress(z)
    scales, means = codec.entropy_parameters(bottleneck.decompress(z_strings, z.shape[-2:]))
    indexes = conditional.build_indexes(scales)
    y_coded = y.to(torch.float64)
    return {"strings": [conditional.compress(y_coded, indexes, means=means), z_strings],
            "shape": tuple(z.shape[-2:])}


class OnnxEncoder:
    """An exported analysis graph run by ONNX Runtime, followed by the rANS coder of ``codec``;
    ``compress`` has the contract of ``codec.compress``."""

    def __init__(self, codec: nn.Module, onnx_path: str | os.PathLike, threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError:
            raise InputError("onnxruntime is not installed: pip install 'cosmic[onnx]'") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.codec = codec.eval()
        self.inputs = [i.name for i in self.session.get_inputs()]

    def analysis(self, x: torch.Tensor, quality=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, z) of a (B, 3, T, T) batch from ONNX Runtime."""
        feed = {"x": x.numpy().astype(np.float32)}
        if "quality" in self.inputs:
            feed["quality"] = self.codec.quality_tensor(quality, x.shape[0]).numpy().astype(np.float32)
        y, z = self.session.run(["y", "z"], feed)
        return torch.from_numpy(y), torch.from_numpy(z)

    def compress(self, x: torch.Tensor, quality=None) -> dict:
        """``{"strings": [y, z], "shape": z_hw}`` for a batch of tiles, as ``codec.compress``."""
        return entropy_code(self.codec, *self.analysis(x, quality))
