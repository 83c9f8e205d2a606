"""On-board export: the analysis transforms as an ONNX graph for a satellite's embedded runtime,
and the same graph as the ground's encoder.

What a satellite runs per tile is two parts:

1. the **network** -- E (the LCB / GDN / CAM stack), the colour shortcut, the YCbCr colour
   transform and the gain units of a variable-rate model (:meth:`OnboardCodec.analysis`), then
   the hyper-analysis h_a -- exported here as one ONNX graph ``x[, quality] -> (y, z)``, which an
   embedded runtime (ONNX Runtime, TensorRT, a vendor NPU SDK) executes;
2. the **entropy coder** -- z is quantised and rANS-coded with the factorised prior, h_s (in
   float64) gives the Gaussian scales and means of y, y is rANS-coded -- which stays in the small
   C++ rANS coder of CompressAI (:meth:`HyperpriorCodec.code_latents`), as it does in PyTorch.

:class:`OnnxEncoder` is that split: ONNX Runtime for part 1, the rANS coder for part 2.

Which runtime computes y: the bitstream is a discontinuous function of y (``round(y - mean)``),
so two runtimes that compute y to within an ulp-level error (oneDNN's and MLAS's float32
convolutions differ by up to ~3e-6 on E's output) write different bitstreams whenever a value lands
that close to a rounding boundary: 1 tile in 500 for the former fixed-rate cosmic-small-q3 (a y value at 2.5000009 in
PyTorch, 2.4999999 in ONNX Runtime). No rounding rule removes this (any quantiser has boundaries),
float64 graphs are not an option (ONNX Runtime has no float64 Conv on CPU), and PyTorch is not even
consistent with itself: its y changes by ~4e-6 between 1 and 2 threads. ONNX Runtime's y is
identical for any thread count and batch size. So the ground's encoder runs **the exported graph
itself** (:func:`select_encoder`, used by :class:`~cosmic.pipelines.encode.EncodePipeline` when
``onnxruntime`` is installed and the model is on the CPU): a file coded on the ground is the file
the satellite's ONNX Runtime writes, byte for byte, whatever the thread count or batch size. The
cost is one export per model and tile size per process (about 2 s for cosmic-small, cached), and
ONNX Runtime is faster per tile than PyTorch (``benchmarks/onnx_encode.py``). Without
``onnxruntime`` (or on a GPU) PyTorch computes y; those bitstreams are equally valid and decode
alike, but may round a boundary value the other way. Bit-identity holds for the same graph and
runtime build on the same instruction set; an NPU or another ISA's kernels may still round a
boundary value differently, which the decoder does not care about (any ``y_hat`` decodes).

``onnx`` and ``onnxruntime`` are an optional extra (``pip install cosmic[onnx]``). This module
imports nothing from :mod:`cosmic.ground`.
"""

from __future__ import annotations

import io
import os
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cosmic.errors import InputError

__all__ = ["AnalysisGraph", "export_onnx", "export_bytes", "OnnxEncoder", "select_encoder", "onnx_available",
           "RUNTIMES", "OPSET"]

OPSET = 17
#: who computes y and z on the ground: the exported graph in ONNX Runtime when it is installed and
#: the model is on the CPU ("auto"), always ("onnx"), or PyTorch ("torch")
RUNTIMES = ("auto", "onnx", "torch")
_SESSIONS: OrderedDict = OrderedDict()  # (model digest, config, (h, w)) -> ONNX Runtime session
_MAX_SESSIONS = 8  # a tile size's four shapes (full, right edge, bottom edge, corner) for two models


class AnalysisGraph(nn.Module):
    """``x[, quality] -> (y, z)``: everything before the entropy coder, as one module."""

    def __init__(self, codec: nn.Module):
        super().__init__()
        self.codec = codec
        self.variable_rate = getattr(codec, "quality_range", None) is not None

    def forward(self, x: torch.Tensor, quality: torch.Tensor | None = None):
        y = self.codec.analysis(x, quality)
        return y, self.codec.h_a(self.codec.hyper_input(y))


def _export(codec: nn.Module, f, tile: int | tuple[int, int], opset: int) -> None:
    """Trace the analysis graph of ``codec`` for ``tile`` x ``tile`` (or (h, w)) tiles into ``f``
    (a path or a binary file object)."""
    h, w = (tile, tile) if isinstance(tile, int) else tile
    for side in (h, w):
        if side <= 0 or side % codec.downsampling_factor:
            raise InputError(f"--tile {side}: must be a positive multiple of {codec.downsampling_factor}")
    graph = AnalysisGraph(codec.eval()).eval()
    # batch 2: quality is traced as one value per tile; a private generator, so that exporting
    # (as the encode pipeline does inside a training run's validation) leaves torch's RNG alone
    x = torch.rand(2, getattr(codec, "in_channels", 3), h, w, generator=torch.Generator().manual_seed(0))
    args, names = (x,), ["x"]
    if graph.variable_rate:
        args, names = (x, torch.ones(2)), ["x", "quality"]
    axes = {n: {0: "batch"} for n in names + ["y", "z"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation / tracer notes
        torch.onnx.export(graph, args, f, input_names=names, output_names=["y", "z"],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)


def export_onnx(codec: nn.Module, path: str | os.PathLike, tile: int | tuple[int, int] = 256,
                opset: int = OPSET) -> Path:
    """Write the analysis graph of ``codec`` to ``path`` (batch dimension dynamic, tile shape
    fixed: ``tile`` x ``tile``, or (h, w) for the edge tiles a scene of a known size has)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        _export(codec, str(tmp), tile, opset)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def export_bytes(codec: nn.Module, tile: int | tuple[int, int] = 256, opset: int = OPSET) -> bytes:
    """The analysis graph of ``codec`` for ``tile`` x ``tile`` (or (h, w)) tiles as the bytes of
    an ``.onnx`` file (what :func:`export_onnx` writes), for a session in this process."""
    buf = io.BytesIO()
    _export(codec, buf, tile, opset)
    return buf.getvalue()


def onnx_available() -> bool:
    """Whether ``onnx`` and ``onnxruntime`` (the ``onnx`` extra) are importable."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _session(model, threads: int):
    """An ONNX Runtime CPU session of ``model`` (a path or the serialised graph's bytes)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError("onnxruntime is not installed: pip install 'cosmic[onnx]'") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """An exported analysis graph run by ONNX Runtime, followed by the rANS coder of ``codec``;
    ``compress`` has the contract of ``codec.compress``. ``onnx_path``: the ``.onnx`` file (what
    a satellite loads), or an ONNX Runtime session of it. The graph takes one tile shape;
    ``session_for((h, w))``, when given, supplies the session of another (an edge tile padded to
    the codec's stride, format version 4); without it such a tile is an InputError."""

    def __init__(self, codec: nn.Module, onnx_path, threads: int = 1, session_for=None):
        is_path = isinstance(onnx_path, (str, os.PathLike, bytes))
        self.session = _session(onnx_path, threads) if is_path else onnx_path
        self.codec = codec.eval()
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.shape = tuple(self.session.get_inputs()[0].shape[-2:])
        self.session_for = session_for

    def _session_of(self, shape: tuple[int, int]):
        """The session whose graph takes (h, w) tiles."""
        if shape == self.shape:
            return self.session
        if self.session_for is None:
            raise InputError(f"the ONNX graph takes {self.shape[0]}x{self.shape[1]} tiles, not {shape[0]}x{shape[1]}")
        return self.session_for(shape)

    @property
    def in_channels(self) -> int:
        """The image channels the graph reads (3, or 1 for a single-band model)."""
        return getattr(self.codec, "in_channels", 3)

    def eval(self) -> "OnnxEncoder":
        """Like ``nn.Module.eval`` (the graph has no training mode): for callers of a codec."""
        self.codec.eval()
        return self

    def analysis(self, x: torch.Tensor, quality=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, z) of a (B, C, T, T) batch from ONNX Runtime."""
        feed = {"x": x.numpy().astype(np.float32)}
        if "quality" in self.inputs:
            feed["quality"] = self.codec.quality_tensor(quality, x.shape[0]).numpy().astype(np.float32)
        y, z = self._session_of(tuple(x.shape[-2:])).run(["y", "z"], feed)
        return torch.from_numpy(y), torch.from_numpy(z)

    def compress(self, x: torch.Tensor, quality=None) -> dict:
        """``{"strings": [y, z], "shape": z_hw}`` for a batch of tiles, as ``codec.compress``."""
        return self.codec.code_latents(*self.analysis(x, quality))


def select_encoder(codec: nn.Module, tile: int, runtime: str = "auto"):
    """What computes y and z for ``tile``-px tiles (see the module docstring): an
    :class:`OnnxEncoder` of the exported graph (exported once per model, configuration and tile
    shape in this process; an edge tile's smaller shape on first use), or ``codec`` itself for PyTorch."""
    if runtime not in RUNTIMES:
        raise InputError(f"runtime '{runtime}': choose one of {', '.join(RUNTIMES)}")
    on_cpu = all(p.device.type == "cpu" for p in codec.parameters())
    if runtime == "torch" or (runtime == "auto" and not (on_cpu and onnx_available())):
        return codec
    if not on_cpu:
        raise InputError("runtime 'onnx' runs on the CPU; move the model there or use runtime 'torch'")
    return OnnxEncoder(codec, _cached_session(codec, (tile, tile)), session_for=lambda s: _cached_session(codec, s))


def _cached_session(codec: nn.Module, shape: tuple[int, int]):
    """The ONNX Runtime session of ``codec``'s graph for (h, w) tiles, exported once per model,
    configuration and shape in this process (the newest :data:`_MAX_SESSIONS` kept)."""
    key = (codec.digest(), repr(sorted(getattr(codec, "config", {}).items())), tuple(shape))
    if key not in _SESSIONS:
        _SESSIONS[key] = _session(export_bytes(codec, tuple(shape)), torch.get_num_threads())
        while len(_SESSIONS) > _MAX_SESSIONS:
            _SESSIONS.popitem(last=False)
    _SESSIONS.move_to_end(key)
    return _SESSIONS[key]
