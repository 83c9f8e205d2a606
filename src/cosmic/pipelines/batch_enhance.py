"""The enhance task of a batch (``cosmic enhance DIR_OR_GLOB -o OUTDIR``): JPEG2000 -> enhanced
image (LDM-RSIC, :mod:`cosmic.enhance`), run by :func:`cosmic.pipelines.batch.run_batch` with
:func:`enhance_file`.

Each worker process loads the enhancer once (:data:`_ENHANCERS`) and enhances every file through
the same call as a one-file ``cosmic enhance`` (:meth:`EnhancePipeline.enhance_file`, which
writes atomically and reads the rate from each file's codestream), so its output is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["EnhanceOptions", "enhance_file", "enhance_inputs"]


@dataclass(frozen=True)
class EnhanceOptions:
    """What every file is enhanced with (picklable: it travels to the workers)."""

    model: str | None = None  # the enhancer (default: the shipped JPEG2000 one)
    steps: int = 0
    seed: int = 0
    bpp: float | None = None  # the rate of every file (default: each file's codestream's)
    bands: tuple[int, ...] | None = None
    scale: str | tuple[float, float] | None = None
    prior: str | None = None  # a decoder-side prior in the enhancer's place (shipped name or directory)
    fidelity: float | None = None  # its fidelity (None: the prior's default)


#: the enhancers (or priors) this process has loaded, by (model, prior, fidelity)
_ENHANCERS: dict = {}


def enhance_inputs(bpp: float | None, prior: str | None = None) -> tuple[str, ...]:
    """The suffixes a folder or glob of JPEG2000 files contributes: the JPEG2000 files, and
    GeoTIFF products too when ``bpp`` gives their rate (their size does not) or a ``prior``, which
    needs no rate, enhances them."""
    from cosmic.enhance.pipeline import JPEG2000_SUFFIXES

    return JPEG2000_SUFFIXES + ((".tif", ".tiff") if bpp is not None or prior else ())


def enhance_file(source: Path, output: Path, options: EnhanceOptions) -> str:
    """Enhance one JPEG2000 file into ``output`` (atomically); the result line's message."""
    from cosmic.codebook.prior import load_prior
    from cosmic.enhance.pipeline import EnhancePipeline, PriorPipeline

    o = options
    key = (o.model, o.prior, o.fidelity)
    if key not in _ENHANCERS:
        _ENHANCERS[key] = (PriorPipeline(load_prior(o.prior), o.fidelity) if o.prior
                           else EnhancePipeline.for_source("jpeg2000", o.model))
    done = _ENHANCERS[key].enhance_file(source, output, o.steps, o.seed, o.bpp,
                                        None if o.bands is None else list(o.bands), o.scale)
    rate = "" if done.bpp is None else f", {done.bpp:.4f} bpp input"
    return f"{done.width}x{done.height} px{rate}, " + (f"prior {o.prior}" if o.prior else f"steps {o.steps}") + "".join(
        f"; note: {n}" for n in done.notes)
