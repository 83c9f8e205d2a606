"""Where the networks run and in what precision: ``--device`` and ``--precision`` of every command.

* :func:`resolve_device` turns ``auto | cpu | cuda | cuda:N`` into a :class:`torch.device`
  (``auto``: the GPU of this process's ``LOCAL_RANK`` under torchrun, else ``cuda:0`` when CUDA is
  there, else the CPU), with a one-line :class:`~cosmic.errors.InputError` for a device that is
  not there.
* :func:`autocast` is the mixed-precision context of the *network* parts (``fp32``: none; ``bf16``
  on CPU or CUDA; ``fp16`` on CUDA only, with a gradient scaler when training, see
  :func:`grad_scaler`).
* :func:`exact` switches autocast off again: the entropy-coding paths (the float64 ``h_s``, the
  rANS coder's inputs) run inside it, so a bitstream does not depend on the precision a command
  was asked for (the paper's coder assumes bit-identical CDF indices on both ends; CompressAI
  issues #279, #309).
* :func:`exact_synthesis` is the module a decode synthesises pixels with: a frozen float64 copy
  of the ground decoder (:func:`float64_copy`) unless autocast asks for reduced precision, so that
  a tile's pixels do not depend on the thread count, the batch or the device (docs/DESIGN.md §3).
* :func:`configure` sets the defaults the decode pipeline picks up (``cosmic eval`` sets them once
  rather than threading a device through the harness).

Models are moved once, by :func:`move_model`, which also drops cached copies (the float64 h_s)
that ``Module.to`` would not move.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os

import torch

from cosmic.errors import InputError

__all__ = ["resolve_device", "check_precision", "autocast", "exact", "exact_synthesis", "float64_copy",
           "grad_scaler", "move_model", "configure", "configured", "defaults", "PRECISIONS"]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_DEFAULTS = {"device": "cpu", "precision": "fp32"}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a device that exists here."""
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {spec}: CUDA is not available here (torch {torch.__version__}); "
                             "use --device cpu or auto")
        index = spec.partition(":")[2]
        if index and not index.isdigit():
            raise InputError(f"--device {spec}: expected cuda or cuda:N")
        n = int(index) if index else torch.cuda.current_device()
        if n >= torch.cuda.device_count():
            raise InputError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device("cuda", n)
    raise InputError(f"--device {spec}: choose auto, cpu, cuda or cuda:N")


def check_precision(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of ``precision`` on ``device``; InputError for fp16 on the CPU."""
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision}: choose fp32, bf16 or fp16")
    if precision == "fp16" and device.type != "cuda":
        raise InputError("--precision fp16: needs a CUDA device; use bf16 on the CPU")
    return PRECISIONS[precision]


def autocast(device: torch.device | str, precision: str = "fp32"):
    """Autocast for the network parts at ``precision`` (a no-op context for fp32)."""
    device = resolve_device(device) if isinstance(device, str) else device
    dtype = check_precision(precision, device)
    if dtype is torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def exact():
    """Autocast off on the CPU and (where present) CUDA: the coding paths run in their own
    float32 / float64, whatever precision the surrounding code asked for."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.autocast("cpu", enabled=False))
        if torch.cuda.is_available():
            stack.enter_context(torch.autocast("cuda", enabled=False))
        yield


def float64_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A frozen float64 copy of ``module`` in eval mode, cached on it and made again whenever one of
    its weights or buffers changed: replaced, moved, or updated in place (each tensor's version
    counter), so a training loop that decodes between steps never decodes with stale weights."""
    key = tuple((t.data_ptr(), t._version, t.device) for t in itertools.chain(module.parameters(), module.buffers()))
    cached = module.__dict__.pop("_float64_copy", None)
    if cached is None or cached[0] != key:
        double = copy.deepcopy(module).to(torch.float64).eval()
        for p in double.parameters():
            p.requires_grad_(False)
        cached = (key, double)
    module.__dict__["_float64_copy"] = cached  # outside _modules: not a submodule, not in state_dict
    return cached[1]


def exact_synthesis(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module a decode runs its synthesis with on ``device``: :func:`float64_copy` of ``module``,
    or ``module`` itself (float32 under autocast) when autocast is on there (``--precision bf16 /
    fp16``: speed asked for over exactness). In float64 the result of a different summation order
    (threads, batch, CPU kernels, GPU) differs by ~1e-16 relative, so the 8-bit pixels differ only
    where a value lies within ~1e-12 of a rounding boundary."""
    return module if torch.is_autocast_enabled(device.type) else float64_copy(module)


def grad_scaler(device: torch.device, precision: str) -> "torch.amp.GradScaler":
    """A gradient scaler, enabled only for fp16 (bf16 has float32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def move_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model.to(device)`` once, dropping cached derived copies (``_invalidate``) made on the
    previous device."""
    if next(iter(model.parameters()), torch.empty(0)).device != device:
        model = model.to(device)
    for m in model.modules():
        if hasattr(m, "_invalidate"):
            m._invalidate()
    return model


def configure(device: str | None = None, precision: str | None = None) -> None:
    """Set the process-wide defaults (device spec, precision) of :class:`~cosmic.pipelines.decode.DecodePipeline`."""
    if device is not None:
        check_precision(precision or _DEFAULTS["precision"], resolve_device(device))
        _DEFAULTS["device"] = device
    if precision is not None:
        check_precision(precision, resolve_device(_DEFAULTS["device"]))
        _DEFAULTS["precision"] = precision


@contextlib.contextmanager
def configured(device: str | None = None, precision: str | None = None):
    """:func:`configure` for the duration of a ``with`` block (``cosmic eval``), restored after."""
    saved = dict(_DEFAULTS)
    try:
        configure(device, precision)
        yield
    finally:
        _DEFAULTS.update(saved)


def defaults() -> tuple[torch.device, str]:
    """(device, precision) configured for this process (CPU, fp32 unless :func:`configure`\\ d)."""
    return resolve_device(_DEFAULTS["device"]), _DEFAULTS["precision"]
